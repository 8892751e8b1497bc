import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Compare the stores of one registry: root, index and revocation versions, and whether they agree.",
      discussion: """
        Reads each target's index.json and root chain (nothing is written), verifies them from the \
        trusted root, and reports per target the root version, the index and revocation list \
        versions and expiries. The targets agree when they hold the same root, the same \
        index.json bytes and the same revocation list version. \
        Exit 0 all agree and verify, 2 a target lags or diverges, 4 a target does not verify, \
        5 a target is unreachable (the others are still reported).
        """)
    @Option(parsing: .upToNextOption, help: "A store URL; repeatable.") var to: [String] = []
    @Option(help: "Give up on a request after this many seconds.") var timeout: Double = 10
    @Option(help: "The trusted root to verify with (default: this home's, or the built-in one).") var root: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
      if to.isEmpty { throw ValidationError("--to is required at least once") }
      if !(timeout > 0) || !timeout.isFinite { throw ValidationError("invalid --timeout '\(timeout)': expected seconds above 0") }
    }

    func run() throws {
      for url in to {
        // A malformed URL or half a credential pair is a usage error up front.
        do { _ = try StoreURL.openReader(url) } catch let e as TsukuError where e.code == .usage { throw e } catch {}
      }
      let anchor: TrustedRoot
      let name: String
      if let root {
        (anchor, name) = (try TrustedRoot.read(root), "'\(root)'")
      } else if let trusted = try Home.fromEnvironment().loadTrust()?.0 {
        (anchor, name) = (trusted, "this home's trust")
      } else {
        (anchor, name) = (try DefaultRegistry.root(), "the built-in root (pass --root for another registry)")
      }
      let r = RegistryStatus.check(targets: to, root: anchor, rootName: name, timeout: timeout, now: Date())
      if json {
        Output.json(r)
      } else {
        for t in r.targets {
          var line = "\(t.status): \(t.target)"
          if let v = t.root_version { line += ", root version \(v)" }
          if let v = t.index_version { line += ", index version \(v) (expires \(t.index_expires ?? "?"))" }
          if let v = t.revocation_version { line += ", revocation list version \(v) (expires \(t.revocation_expires ?? "?"))" }
          Output.line(line)
          for p in t.problems { Output.line("  \(p)") }
        }
        Output.line(r.agree ? "all \(r.targets.count) targets agree (checked against \(r.checked_against))" : "targets do not agree (checked against \(r.checked_against))")
      }
      if r.exit_code != 0 { throw ExitCode(r.exit_code) }
    }
  }
}
