import Foundation
import Store
import Sync
import TestSupport
import Testing

/// The shipped fixture: real snapshots of skaffold, mkcert and gh from the registry history.
let driftFixture: String = {
  var u = URL(fileURLWithPath: #filePath)
  for _ in 0..<2 { u.deleteLastPathComponent() }
  return u.path + "/Fixtures/drift"
}()

/// The corpus commits the fixture was cut from: (recipe, letter, test copy's commit, production's commit).
let driftPairs = [
  ("skaffold", "s", "25854aa5b161e9d566f20a13013e0f105fdf4a56", "88e5cb08b69eff5eb44891ed63f201244815dea0"),
  ("mkcert", "m", "ff4df1755aab0911558f2ff0cf9735e81829e2c9", "a67b317f20bae8653cd80a9652a9f4f978bd0f16"),
  ("gh", "g", "4e5d25633753b43b491ed2e8bbfb94f825524618", "26cf0ec2aa3154b6ad6f997384855457e247f0f5"),
]

/// A test copy of a recipe: the snapshot with `source_recipe` added after the `name` line,
/// indented like it.
func linkedTestCopy(_ text: String, link: String) -> String {
  var lines = text.components(separatedBy: "\n")
  let indent = lines[1].prefix { $0 == " " }
  lines.insert("\(indent)source_recipe = \"\(link)\"", at: 2)
  return lines.joined(separator: "\n")
}

private func write(_ text: String, _ path: String) throws {
  try FileManager.default.createDirectory(
    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
  try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

private func paths(_ r: DriftResult?) -> [String] { r?.differences.map(\.path) ?? [] }

@Suite struct DriftTests {
  @Test(
    "a real drifted pair from the corpus history: skaffold's binary became binaries",
    .enabled(if: corpusAvailable, "needs git and ../shared/corpus/tsuku-registry-history.bundle"))
  func realDriftedPairFromTheCorpusHistory() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-drift")
    try runGit(["clone", "-q", "--bare", corpusBundle, dir.file("history.git")], in: dir.path)
    func show(_ commit: String, _ path: String) throws -> String {
      try runGit(["--git-dir", dir.file("history.git"), "show", "\(commit):\(path)"], in: dir.path) + "\n"
    }
    let (name, letter, old, new) = driftPairs[0]
    let path = "registry/recipes/\(letter)/\(name).toml"
    let before = try show(old, path)
    let after = try show(new, path)
    #expect(before != after)
    try write(after, dir.file("registry/recipes/\(letter)/\(name).toml"))
    try write(linkedTestCopy(before, link: "recipes/\(letter)/\(name).toml"), dir.file("testdata/recipes/\(name).toml"))

    let report = try Drift.check(recipes: dir.file("registry/recipes"), testdata: dir.file("testdata"))
    #expect(report.results.count == 1)
    let r = report.results.first
    #expect(r?.status == .drift)
    #expect(paths(r) == ["steps[0].binaries", "steps[0].binary"])
    #expect(r?.differences.first?.old == nil)
    #expect(
      r?.differences.first?.new
        == .array([.table(["src": .string("skaffold-{os}-{arch}"), "dest": .string("bin/skaffold")])]))
    #expect(r?.differences.last?.old == .string("skaffold"))
    #expect(r?.differences.last?.new == nil)
    #expect(report.exitCode == 2)
  }

  @Test(
    "the shipped fixture is exactly the corpus snapshots plus the source_recipe line",
    .enabled(if: corpusAvailable, "needs git and ../shared/corpus/tsuku-registry-history.bundle"))
  func fixtureIsTheCorpusSnapshotsPlusTheLink() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-drift")
    try runGit(["clone", "-q", "--bare", corpusBundle, dir.file("history.git")], in: dir.path)
    for (name, letter, old, new) in driftPairs {
      let path = "registry/recipes/\(letter)/\(name).toml"
      let before = try runGit(["--git-dir", dir.file("history.git"), "show", "\(old):\(path)"], in: dir.path) + "\n"
      let after = try runGit(["--git-dir", dir.file("history.git"), "show", "\(new):\(path)"], in: dir.path) + "\n"
      let prod = try String(contentsOfFile: driftFixture + "/recipes/\(letter)/\(name).toml", encoding: .utf8)
      let test = try String(contentsOfFile: driftFixture + "/testdata/recipes/\(name).toml", encoding: .utf8)
      #expect(prod == after, "\(name): production copy differs from \(new)")
      #expect(test == linkedTestCopy(before, link: "recipes/\(letter)/\(name).toml"), "\(name): test copy differs from \(old)")
    }
  }

  @Test("the shipped fixture: skaffold and mkcert drifted, gh only changed its metadata")
  func shippedFixtureReportsTheRealDrift() throws {
    let report = try Drift.check(recipes: driftFixture + "/recipes", testdata: driftFixture + "/testdata")
    #expect(report.results.map(\.testRecipe) == ["recipes/gh.toml", "recipes/mkcert.toml", "recipes/skaffold.toml"])
    #expect(report.results.map(\.status) == [.ok, .drift, .drift])
    #expect(report.unlinked.isEmpty)
    let mkcert = report.results[1]
    #expect(
      paths(mkcert) == [
        "steps[0].action", "steps[0].asset_pattern", "steps[0].binary", "steps[0].formula", "steps[0].repo", "steps[1]",
      ])
    #expect(mkcert.differences[0].old == .string("homebrew"))
    #expect(mkcert.differences[0].new == .string("github_file"))
    #expect(mkcert.differences[0].change == "changed")
    #expect(mkcert.differences[3].change == "removed")
    #expect(mkcert.differences[4].change == "added")
    #expect(mkcert.differences[5].old?.tableValue?["action"] == .string("install_binaries"))
    #expect(mkcert.differences[5].new == nil)
    #expect(mkcert.production == driftFixture + "/recipes/m/mkcert.toml")
    #expect(paths(report.results[2]) == ["steps[0].binaries", "steps[0].binary"])
    #expect(report.exitCode == 2)
  }

  @Test("layout, comments, key order and quoting are not drift; a parameter inside 'when' is")
  func layoutIsNotDriftButNestedParametersAre() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-drift")
    try write(
      """
      [metadata]
      name = "tool"
      [[steps]]
      action = "github_archive"
      when = { os = ["linux"], arch = "amd64" }
      strip_dirs = 1
      [verify]
      command = "tool --version"
      """, dir.file("recipes/t/tool.toml"))
    // Same steps: other key order, literal strings, a comment, an exploded inline table.
    try write(
      """
      # a test copy
      [metadata]
      name = "tool"
      source_recipe = "recipes/t/tool.toml"
      description = "not compared"

      [[steps]]
        strip_dirs = 1   # same value
        action = 'github_archive'
        [steps.when]
        arch = "amd64"
        os = [ "linux" ]
      """, dir.file("testdata/same/tool.toml"))
    try write(
      """
      [metadata]
      name = "tool"
      source_recipe = "recipes/t/tool.toml"
      [[steps]]
      action = "github_archive"
      when = { os = ["linux", "darwin"], arch = "amd64" }
      strip_dirs = 1
      """, dir.file("testdata/changed/tool.toml"))
    let report = try Drift.check(recipes: dir.file("recipes"), testdata: dir.file("testdata"))
    #expect(report.results.map(\.testRecipe) == ["changed/tool.toml", "same/tool.toml"])
    #expect(report.results.map(\.status) == [.drift, .ok])
    #expect(paths(report.results.first) == ["steps[0].when.os"])
    #expect(report.results.first?.differences.first?.old == .array([.string("linux"), .string("darwin")]))
    #expect(report.results.first?.differences.first?.new == .array([.string("linux")]))
  }

  @Test("a missing source recipe is a finding that names the file it looked for")
  func missingSourceRecipeIsAFindingWithItsReason() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-drift")
    try FileManager.default.createDirectory(atPath: dir.file("recipes"), withIntermediateDirectories: true)
    try write(
      "[metadata]\nname = \"gone\"\nsource_recipe = \"recipes/g/gone.toml\"\n[[steps]]\naction = \"x\"\n",
      dir.file("testdata/gone.toml"))
    try write("[metadata]\nname = \"plain\"\n[[steps]]\naction = \"x\"\n", dir.file("testdata/plain.toml"))
    let report = try Drift.check(recipes: dir.file("recipes"), testdata: dir.file("testdata"))
    #expect(report.results.count == 1)
    #expect(report.results.first?.status == .missing)
    #expect(report.results.first?.reason == "source recipe 'recipes/g/gone.toml' not found: no file '\(dir.file("recipes/g/gone.toml"))'")
    #expect(report.unlinked == ["plain.toml"])
    #expect(report.exitCode == 2)
  }

  @Test("attack: a source_recipe that climbs out of the recipes folder is refused, not read")
  func sourcePathOutsideTheRecipesFolderIsRefused() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-drift")
    try FileManager.default.createDirectory(atPath: dir.file("recipes"), withIntermediateDirectories: true)
    try write("[[steps]]\naction = \"x\"\n", dir.file("outside.toml"))
    for (n, link) in ["recipes/../../outside.toml", "/etc/passwd", "recipes//x.toml", "recipes/x/y.txt"].enumerated() {
      try write(
        "[metadata]\nname = \"t\"\nsource_recipe = \"\(link)\"\n[[steps]]\naction = \"x\"\n",
        dir.file("testdata/t\(n).toml"))
    }
    let report = try Drift.check(recipes: dir.file("recipes"), testdata: dir.file("testdata"))
    #expect(report.results.map(\.status) == [.invalid, .invalid, .invalid, .invalid])
    #expect(report.results.allSatisfy { $0.production == nil })
    #expect(report.results[0].reason?.contains("is not a relative path like 'recipes/x/name.toml'") == true)
    #expect(report.results[3].reason?.contains("is not a .toml file") == true)
  }

  @Test("a broken test recipe is a finding only when it means to name a production recipe")
  func brokenTestRecipes() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-drift")
    try FileManager.default.createDirectory(atPath: dir.file("recipes"), withIntermediateDirectories: true)
    try write("[metadata\nname = \"bad\"\n", dir.file("testdata/deliberately-broken.toml"))
    try write("[metadata]\nsource_recipe = \"recipes/a/a.toml\"\nname = \n", dir.file("testdata/linked-broken.toml"))
    try write("[metadata]\nsource_recipe = 3\n", dir.file("testdata/not-a-string.toml"))
    try write("[metadata]\nsource_recipe = \"recipes/b/b.toml\"\n[[steps]]\naction = \"x\"\n", dir.file("testdata/b.toml"))
    try write("steps = 3\n", dir.file("recipes/b/b.toml"))
    let report = try Drift.check(recipes: dir.file("recipes"), testdata: dir.file("testdata"))
    #expect(report.unreadable == ["deliberately-broken.toml"])
    #expect(report.results.map(\.testRecipe) == ["b.toml", "linked-broken.toml", "not-a-string.toml"])
    #expect(report.results.map(\.status) == [.invalid, .invalid, .invalid])
    #expect(report.results[0].reason == "source recipe: 'steps' is not an array of tables")
    #expect(report.results[1].reason?.hasPrefix("test recipe: not valid TOML: line 3:") == true)
    #expect(report.results[2].reason == "metadata.source_recipe is not a string")
  }

  @Test("a folder that does not exist is a usage error naming it")
  func missingFolderIsAUsageError() throws {
    #expect(throws: TsukuError(.usage, "--testdata '/nonexistent/t' is not a directory")) {
      try Drift.check(recipes: driftFixture + "/recipes", testdata: "/nonexistent/t")
    }
    #expect(throws: TsukuError(.usage, "--recipes '/nonexistent/r' is not a directory")) {
      try Drift.check(recipes: "/nonexistent/r", testdata: driftFixture + "/testdata")
    }
  }

  @Test("values print as inline TOML and encode as JSON")
  func valuesPrintAsInlineTOML() throws {
    let v = TOMLValue.table([
      "a b": .string("x\"y\n"), "n": .integer(3), "f": .float(1.5), "t": .bool(true), "d": .datetime("1979-05-27"),
      "list": .array([.string("p"), .integer(1)]),
    ])
    #expect(v.inlineTOML == #"{ "a b" = "x\"y\n", d = 1979-05-27, f = 1.5, list = ["p", 1], n = 3, t = true }"#)
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    #expect(
      String(decoding: try e.encode(TOMLJSON(v)), as: UTF8.self)
        == #"{"a b":"x\"y\n","d":"1979-05-27","f":1.5,"list":["p",1],"n":3,"t":true}"#)
  }
}
