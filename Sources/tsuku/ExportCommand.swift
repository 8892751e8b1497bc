import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write the verified registry as a folder in the Go tsuku client's layout, or re-verify one.",
      discussion: """
        Reads the registry of this home (TSUKU_HOME, its sources, TSUKU_SOURCES) the way 'tsuku \
        show' does, every blob checked against the signed index (hash, size, expiry, \
        revocation); the cache is synced first when it lacks blobs the export needs. Writes:
          recipes/<first character>/<name>.toml     every recipe, exact bytes
          _site/recipes.json, recipes.json          the Go client's index
          plans/<embedded|letter>/<name>/v<version>/<platform>.json
                                                    golden files (--golden)
          .tsuku-export/                            signed index, shards, hashes
        A revoked recipe or golden file is left out with one warning line, and the revoked \
        recipe's name is taken out of every other recipe's satisfies in recipes.json, so the Go \
        client does not resolve that name to another recipe.

        The new tree is built beside DIR, fsynced, and swapped in with one rename: a reader sees \
        the old export or the new one, never a mix; what the registry removed is gone from DIR. \
        On failure DIR is left as it was. DIR must be new, empty, or an earlier export: any \
        other folder is refused (exit 64).

        --check DIR re-verifies an export against the home's trusted root: every listed file \
        present with its hash and size, pinned by the signed index and not revoked, nothing \
        missing or extra. Exit 4 with one line per problem.

        Then, for today's Go tsuku (TSUKU_REGISTRY_URL in its environment only):
          TSUKU_REGISTRY_URL=/srv/tsuku-registry tsuku install fzf
        """)
    @OptionGroup var options: ClientOptions
    @Option(help: ArgumentHelp("The folder to write (created, or an earlier export replaced).", valueName: "dir"))
    var to: String?
    @Option(help: ArgumentHelp("Re-verify the export in this folder instead of writing one.", valueName: "dir"))
    var check: String?
    @Flag(help: "Also export the golden files (plans/...).") var golden = false
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
      switch (to, check) {
      case (nil, nil): throw ValidationError("give --to DIR (export) or --check DIR (re-verify)")
      case (.some, .some): throw ValidationError("give --to or --check, not both")
      case (nil, .some) where golden: throw ValidationError("--golden applies to --to, not --check")
      default: break
      }
      for (flag, value) in [("--to", to), ("--check", check)] where value?.isEmpty == true {
        throw ValidationError("invalid \(flag) '': name a folder")
      }
    }

    func run() throws {
      // The check reads the home only (its trusted root and cached revocations), no source.
      if let check { return try runCheck(try ClientOptions.offlineClient(), check) }
      let client = try options.client()
      let line = ProgressLine.fromEnvironment(ProcessEnvironment.current)
      let r: GoExport.Report
      do {
        r = try GoExport.export(
          client: client, to: to!, golden: golden,
          warn: { text in
            line?.clear()
            Output.warn(text)
          },
          progress: { line?.show($0) })
      } catch {
        line?.clear()
        throw error
      }
      line?.clear()
      if json { return Output.json(r) }
      let left = r.revoked.isEmpty ? "" : "; \(r.revoked.count) revoked left out"
      Output.line(
        "exported index version \(r.index_version) to \(r.dir): \(r.recipes) recipes (\(r.critical) critical), \(r.golden) golden files, \(ByteSize.describe(r.bytes))\(left)"
      )
    }

    func runCheck(_ client: Client, _ dir: String) throws {
      let (root, _) = try client.trust()
      let current = client.revocations().mapValues(\.reason)
      let r = GoExport.check(dir: dir, root: root, revoked: current, now: client.now)
      if json {
        Output.json(r)
      } else {
        for p in r.problems { Output.line(p.line) }
        if r.ok {
          Output.line(
            "export \(r.dir) verified: index version \(r.index_version ?? 0), \(r.files_checked) files (\(ByteSize.describe(r.bytes_checked)))"
          )
        }
      }
      if !r.ok {
        throw TsukuError(
          .integrity,
          "export '\(r.dir)' failed its check: \(r.problems.count) problem\(r.problems.count == 1 ? "" : "s")")
      }
    }
  }
}
