import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A publish says what it changes, refuses to drop critical recipes or much of the registry by
/// accident, refuses revoked files, and reports every bad input file at once.
@Suite struct PublishSafetyTests {
  static let source = checkout + "/registry-index/source"

  /// Every file under the store, with its bytes: what "writes nothing" compares.
  func snapshot(_ w: CLIWorld) throws -> [String: Data] {
    let root = w.dir.file("store")
    var out = [String: Data]()
    for p in try FileManager.default.subpathsOfDirectory(atPath: root) {
      out[p] = FileManager.default.contents(atPath: root + "/" + p)
    }
    return out
  }

  /// A copy of the sample with one recipe added (ackx), one changed (jq), one removed (bat) and
  /// one golden file removed (fzf's darwin-amd64).
  func editedCopy(_ w: CLIWorld) throws -> (recipes: String, golden: String) {
    let fm = FileManager.default
    let recipes = w.dir.file("edited/recipes")
    let golden = w.dir.file("edited/golden")
    try fm.createDirectory(atPath: w.dir.file("edited"), withIntermediateDirectories: true)
    try fm.copyItem(atPath: Self.source + "/recipes", toPath: recipes)
    try fm.copyItem(atPath: Self.source + "/golden", toPath: golden)
    let ack = try String(contentsOfFile: recipes + "/a/ack.toml", encoding: .utf8)
    try ack.replacingOccurrences(of: "name = \"ack\"", with: "name = \"ackx\"")
      .write(toFile: recipes + "/a/ackx.toml", atomically: true, encoding: .utf8)
    let jq = try String(contentsOfFile: recipes + "/j/jq.toml", encoding: .utf8)
    try (jq + "\n# edited\n").write(toFile: recipes + "/j/jq.toml", atomically: true, encoding: .utf8)
    try fm.removeItem(atPath: recipes + "/b/bat.toml")
    try fm.removeItem(atPath: golden + "/f/fzf/v0.60.0-darwin-amd64.json")
    return (recipes, golden)
  }

  @Test func publishDryRunListsAddedChangedRemovedAndWritesNothing() throws {
    let w = try CLIWorld()
    try w.setUp()
    let (recipes, golden) = try editedCopy(w)
    let args = [
      "registry", "publish", "--recipes", recipes, "--critical", Self.source + "/embedded", "--golden", golden, "--key",
      w.k("index"), "--to", w.store,
    ]
    let before = try snapshot(w)
    var r = try runTsuku(args + ["--dry-run"], env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    let dry = r.out.split(separator: "\n").map(String.init)
    #expect(dry.first == "\(w.dir.file("store")) (index version 1): recipes +1 ~1 -1, golden files +0 ~0 -1")
    #expect(Array(dry.dropFirst().prefix(4)) == ["  + recipe ackx", "  ~ recipe jq", "  - recipe bat", "  - golden fzf/v0.60.0-darwin-amd64"])
    #expect(dry.last?.hasPrefix("dry run: index version 2 not published") == true)
    #expect(try snapshot(w) == before)

    r = try runTsuku(args + ["--dry-run", "--json"], env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(json["dry_run"] as? Bool == true)
    let change = try #require((json["changes"] as? [[String: Any]])?.first)
    #expect(change["target"] as? String == w.dir.file("store"))
    let rl = try #require(change["recipes"] as? [String: Any])
    #expect(rl["added"] as? [String] == ["ackx"] && rl["changed"] as? [String] == ["jq"] && rl["removed"] as? [String] == ["bat"])
    #expect((change["golden"] as? [String: Any])?["removed"] as? [String] == ["fzf/v0.60.0-darwin-amd64"])
    #expect((json["targets"] as? [Any])?.isEmpty == true)
    #expect(try snapshot(w) == before)

    // The real publish prints the same summary, then writes.
    r = try runTsuku(args, env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    let real = r.out.split(separator: "\n").map(String.init)
    #expect(Array(real.dropLast()) == Array(dry.dropLast()))
    #expect(real.last?.hasPrefix("published index version 2") == true)
    #expect(try snapshot(w) != before)
  }

  @Test func publishThatDropsCriticalRecipesIsRefusedUnlessAllowRemovals() throws {
    let w = try CLIWorld()
    try w.setUp()
    let before = try snapshot(w)
    // The reported mistake: --critical and --golden left out.
    let args = ["registry", "publish", "--recipes", Self.source + "/recipes", "--key", w.k("index"), "--to", w.store]
    var r = try runTsuku(args, env: w.env, binary: w.bin)
    #expect(r.status == 64, "\(r.stderr)")
    #expect(r.stderr.contains("\nerror: publish refused (nothing written; pass --allow-removals"))
    #expect(r.stderr.contains("it removes 19 critical recipe(s): bash, ca-certificates, cmake"))
    #expect(r.stderr.contains("it removes 435 of 435 golden files (more than 5%)"))
    #expect(try snapshot(w) == before)

    // A dry run shows the same refusal after its list, and writes nothing either.
    r = try runTsuku(args + ["--dry-run"], env: w.env, binary: w.bin)
    #expect(r.status == 64)
    #expect(r.out.contains("  - recipe bash"))
    #expect(r.stderr.contains("it removes 19 critical recipe(s)"))
    #expect(try snapshot(w) == before)

    r = try runTsuku(args + ["--allow-removals"], env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("  - recipe bash"))
    #expect(r.out.contains("published index version 2"))
  }

  @Test func publishOfARevokedHashIsRefusedNamingTheFileAndReason() throws {
    let w = try CLIWorld()
    try w.setUp()
    let fzf = try #require(FileManager.default.contents(atPath: Self.source + "/recipes/f/fzf.toml"))
    var r = try w.run(
      "registry", "revoke", SHA256.hash(fzf).hex, "--reason", "compromised upstream", "--key", w.k("revocation"), "--to",
      w.store)
    #expect(r.status == 0, "\(r.stderr)")
    let before = try snapshot(w)
    r = try w.run(
      "registry", "publish", "--recipes", Self.source + "/recipes", "--critical", Self.source + "/embedded", "--golden",
      Self.source + "/golden", "--key", w.k("index"), "--to", w.store)
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("\nerror: \(Self.source)/recipes/f/fzf.toml (\(SHA256.hash(fzf).hex.prefix(16))): revoked: compromised upstream\n"))
    #expect(r.stderr.contains("revoked: compromised upstream"))
    #expect(try snapshot(w) == before)
  }

  @Test func everyBadInputFileIsReportedAtOnceWithItsRelativePath() throws {
    let w = try CLIWorld()
    try w.setUp()
    let bad = w.dir.file("bad")
    for (dir, name) in [("b", "broken"), ("c", "cracked")] {
      try FileManager.default.createDirectory(atPath: bad + "/" + dir, withIntermediateDirectories: true)
      try Data("[metadata]\nname = \"\(name)\"\n".utf8).write(to: URL(fileURLWithPath: "\(bad)/\(dir)/\(name).toml"))
    }
    try Data("not toml [".utf8).write(to: URL(fileURLWithPath: bad + "/zz.toml"))
    let before = try snapshot(w)
    let r = try w.run("registry", "publish", "--recipes", bad, "--key", w.k("index"), "--to", w.store)
    #expect(r.status == 64)
    let lines = r.stderr.split(separator: "\n").map(String.init)
    #expect(lines.first == "error: 3 input file(s) refused in '\(bad)'; nothing written:")
    #expect(lines.dropFirst().map { String($0.prefix { $0 != ":" }) } == ["  b/broken.toml", "  c/cracked.toml", "  zz.toml"])
    #expect(!r.stderr.contains(bad + "/b/"))
    #expect(try snapshot(w) == before)
  }
}
