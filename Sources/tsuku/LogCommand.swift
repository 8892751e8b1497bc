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
        role in CI, or TSUKU_PUBLISHER). Nothing is written.
        """)
    @Option(help: "The store URL.") var from: String
    @Option(help: "The newest N versions.") var limit = 20
    @Option(help: "The trusted root to verify with (default: this home's, or the built-in one).") var root: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
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
  }
}
