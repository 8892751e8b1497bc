import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `publish --dry-run` and the real publish report the same changes, and those changes are what
/// really changed between two snapshots of the real registry history (`../shared/corpus`):
/// pairs with additions, edits, deletions, renames, and the day 378 golden files left git.
@Suite struct PublishChangesCorpusTests {
  /// Snapshot pairs (1-based, as `git log --reverse` numbers them) chosen for their churn.
  static let pairs = [
    (9, 10), (46, 47), (59, 60), (64, 65), (65, 66), (67, 68), (147, 148), (152, 153), (162, 163), (262, 263),
  ]

  /// The changes computed from the files alone: recipes by name (bytes or category changed),
  /// golden files as `<tool>/<file name without .json>`.
  static func expected(from old: PublishInput, to new: PublishInput) throws -> (recipes: PublishChanges.Lists, golden: PublishChanges.Lists) {
    func files(_ dir: String?, ext: String, key: (String) -> String) throws -> [String: Data] {
      guard let dir else { return [:] }
      var out = [String: Data]()
      for p in try FileManager.default.subpathsOfDirectory(atPath: dir) where p.hasSuffix(ext) {
        out[key(p)] = FileManager.default.contents(atPath: dir + "/" + p)
      }
      return out
    }
    func recipeName(_ p: String) -> String { String(((p as NSString).lastPathComponent).dropLast(5)) }
    func goldenName(_ p: String) -> String {
      let parts = p.split(separator: "/")
      return "\(parts[parts.count - 2])/\(parts[parts.count - 1].dropLast(5))"
    }
    func recipes(_ input: PublishInput) throws -> [String: Data] {
      var out = try files(input.recipes, ext: ".toml", key: recipeName).mapValues { Data("community".utf8) + $0 }
      for (k, v) in try files(input.critical, ext: ".toml", key: recipeName) { out[k] = Data("critical".utf8) + v }
      return out
    }
    func lists(_ before: [String: Data], _ after: [String: Data]) -> PublishChanges.Lists {
      var l = PublishChanges.Lists()
      l.before = before.count
      l.added = after.keys.filter { before[$0] == nil }.sorted()
      l.changed = after.keys.filter { before[$0] != nil && before[$0] != after[$0] }.sorted()
      l.removed = before.keys.filter { after[$0] == nil }.sorted()
      return l
    }
    return (
      lists(try recipes(old), try recipes(new)),
      lists(try files(old.golden, ext: ".json", key: goldenName), try files(new.golden, ext: ".json", key: goldenName))
    )
  }

  @Test(
    .enabled(if: corpusAvailable, "needs git and the real corpus ../shared/corpus/tsuku-registry-history.bundle"),
    .timeLimit(.minutes(5)))
  func dryRunAndPublishReportTheSameChangesOnRealSnapshotPairs() throws {
    let w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { try w.run("registry", "keygen", "--out", w.k(role)) }
    let r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    let history = w.dir.file("history")
    try runGit(["clone", "-q", "-b", "snapshots", corpusBundle, history], in: w.dir.path)
    let commits = try runGit(["log", "--reverse", "--format=%H"], in: history).split(separator: "\n").map(String.init)
    #expect(commits.count == 334)
    var inputs = [Int: PublishInput]()
    func input(_ n: Int) throws -> PublishInput {
      if let i = inputs[n] { return i }
      try runGit(["checkout", "-q", "-f", commits[n - 1]], in: history)
      try runGit(["clean", "-q", "-f", "-d", "-x"], in: history)
      let i = try filteredInput(history, into: w.dir.file("input-\(n)")).0
      inputs[n] = i
      return i
    }
    func publish(_ i: PublishInput, _ extra: [String]) throws -> (CommandResult, [String: Any]) {
      let args = [
        "registry", "publish", "--recipes", i.recipes!, "--critical", i.critical!, "--golden", i.golden!, "--key",
        w.k("index"), "--to", w.store, "--allow-removals", "--json",
      ]
      let r = try runTsuku(args + extra, env: w.env, binary: w.bin)
      let json = try JSONSerialization.jsonObject(with: r.stdout.isEmpty ? Data("{}".utf8) : r.stdout) as? [String: Any]
      return (r, json ?? [:])
    }
    var nonEmpty = 0
    for (a, b) in Self.pairs {
      let (old, new) = (try input(a), try input(b))
      var (res, _) = try publish(old, [])
      #expect(res.status == 0, "snapshot \(a): \(res.stderr)")
      let before = try FileManager.default.contentsOfDirectory(atPath: w.dir.file("store/index")).sorted()
      let dry: [String: Any]
      (res, dry) = try publish(new, ["--dry-run"])
      #expect(res.status == 0, "dry run \(a)->\(b): \(res.stderr)")
      #expect(try FileManager.default.contentsOfDirectory(atPath: w.dir.file("store/index")).sorted() == before)
      let real: [String: Any]
      (res, real) = try publish(new, [])
      #expect(res.status == 0, "publish \(a)->\(b): \(res.stderr)")
      #expect(dry["dry_run"] as? Bool == true && real["dry_run"] as? Bool == false)

      // The same lists, byte for byte in JSON.
      let dryChanges = try JSONSerialization.data(withJSONObject: dry["changes"] ?? [], options: .sortedKeys)
      let realChanges = try JSONSerialization.data(withJSONObject: real["changes"] ?? [], options: .sortedKeys)
      #expect(dryChanges == realChanges, "\(a)->\(b)")
      // And they are what changed in the files.
      let changes = try JSONDecoder().decode([PublishChanges].self, from: realChanges)
      let c = try #require(changes.first)
      let want = try Self.expected(from: old, to: new)
      #expect(c.recipes == want.recipes, "recipes \(a)->\(b)")
      #expect(c.golden == want.golden, "golden files \(a)->\(b)")
      if !(c.recipes.added + c.recipes.changed + c.recipes.removed + c.golden.added + c.golden.changed + c.golden.removed).isEmpty {
        nonEmpty += 1
      }
    }
    // Every pair was chosen for its churn (renames of folders only move files: no change).
    #expect(nonEmpty >= 8, "\(nonEmpty) pairs with changes")
  }
}
