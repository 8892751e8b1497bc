import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku {
  struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "What changed between two index versions: recipes and golden files added, changed and removed.",
      discussion: """
        With no arguments, compares the index the last sync replaced with the cached one (a sync \
        keeps the index it replaces, so this works offline). FROM and TO are index versions; \
        TO defaults to the cached index. A version that is neither cached nor the previous one \
        is read from the sources' archive (index/N.index.json) and verified against the trusted \
        root, like every index.

        Each line is '+' (added), '~' (changed) or '-' (removed), then a recipe name, or \
        'golden' and a golden file as NAME VERSION PLATFORM.
        """)
    @Argument(help: "The older index version (default: the index the last sync replaced).") var from: String?
    @Argument(help: "The newer index version (default: the cached index).") var to: String?
    @Flag(help: "Use only the home: fetch no archived index or blob from a source.") var offline = false
    @Flag(help: "Print every name as JSON.") var json = false

    static func version(_ s: String?, _ what: String) throws -> Client.DiffEnd? {
      guard let s else { return nil }
      guard let n = Int(s), n >= 1 else {
        throw TsukuError(.usage, "invalid \(what) '\(s)': expected an index version (a number from 1)")
      }
      return .version(n)
    }

    func run() throws {
      let fromEnd = try Self.version(from, "FROM") ?? .previous
      let toEnd = try Self.version(to, "TO") ?? .current
      let d = try ClientOptions.makeClient(offline: offline, force: false).indexDiff(from: fromEnd, to: toEnd)
      if json { return Output.json(d) }
      Output.line("index version \(d.from_version) -> \(d.to_version): \(d.counts)")
      for l in d.lines() { Output.line(l) }
    }
  }
}
