import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Who published what: each index version of a store, its date, signers and publisher.",
      discussion: """
        Reads index.json and the archive copies of the versions before it (index/<N>.index.json), \
        verifies each under the root version it names (the store's chain must hold the trusted \
        root), and prints per version: when it was published, the index keys whose signatures \
        verify, and the identity and tool recorded in the signed payload (an OIDC subject and \
        role in CI, or TSUKU_PUBLISHER). Nothing is written. \
        With --hash or --name, reads the store's transparency log instead (its checkpoint \
        checked against the store's root chain, its tiles against the checkpoint): every index \
        version that pinned that blob (or any blob of that recipe), with its date, and the \
        exposure window, first pinned to last pinned (or still pinned). Exit 0 when some \
        version pinned it, 3 when none did.
        """)
    @Option(help: "A blob's SHA-256: the index versions in the transparency log that pinned it.") var hash: String?
    @Option(help: "A recipe name: the index versions in the transparency log that pinned any of its blobs.") var name: String?
    @Option(help: "The store URL.") var from: String
    @Option(help: "The newest N versions.") var limit = 20
    @Option(help: "The trusted root to verify with (default: this home's, or the built-in one).") var root: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
      if hash != nil || name != nil { return try exposure() }
      let anchor = try HealthRoot.resolve(file: root, home: Home.fromEnvironment()).root
      let (entries, missing) = try PublishLog.read(try StoreURL.openReader(from), anchor: anchor, limit: limit)
      if json {
        struct Out: Encodable {
          var store: String
          var versions: [PublishLogEntry]
          var unarchived_versions: [Int]
        }
        return Output.json(Out(store: from, versions: entries, unarchived_versions: missing))
      }
      for e in entries {
        let who = e.identity ?? (e.tool == nil ? "no publisher recorded" : "no identity recorded")
        let keys = e.signed_by.map { String($0.prefix(16)) }.joined(separator: ",")
        Output.line(
          "index version \(e.index_version)  \(e.published)  signed by \(keys.isEmpty ? "?" : keys)  \(who)\(e.tool.map { "  \($0)" } ?? "")")
      }
      if !missing.isEmpty {
        Output.line("no archive copy of version\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", "))")
      }
    }

    /// `--hash` / `--name`: the exposure window from the log.
    func exposure() throws {
      let id = try hash.map { try ObjectID.parse($0) }
      let anchor = try HealthRoot.resolve(file: root, home: Home.fromEnvironment()).root
      let w = try ExposureWindow.read(try StoreURL.openReader(from), anchor: anchor, hash: id, name: name)
      if json {
        Output.json(w)
      } else {
        for v in w.versions {
          Output.line(
            "index version \(v.index_version)  revocation list \(v.revocation_version)  \(v.published)  \(v.pins.joined(separator: ", "))")
        }
        Output.line(w.summary)
      }
      if w.versions.isEmpty { throw ExitCode(3) }
    }
  }
}
