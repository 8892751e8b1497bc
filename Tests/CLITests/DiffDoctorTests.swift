import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `tsuku diff`, the names `update-registry` prints, and `tsuku doctor`, driving the built
/// binary against a registry on disk: version 1 (aa, bb, cc; a golden file of aa), then
/// version 2 (dd added, bb changed, cc removed, a golden file of aa added).
@Suite struct DiffDoctorTests {
  final class World: @unchecked Sendable {
    let f: RegistryFixture
    let store: DirectoryStore
    let bin = tsukuBinary(checkout: checkout)
    var url: String { "file://" + f.dir.file("store") }

    init() throws {
      f = try RegistryFixture()
      store = DirectoryStore(path: f.dir.file("store"))
      try f.initialize(store)
      try f.publish(
        try f.writeInput(
          "v1", recipes: ["aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb"), "cc": RegistryFixture.recipe("cc")],
          golden: ["aa/v1.0-linux-amd64.json": RegistryFixture.golden("aa", version: "1.0")]),
        to: store)
      try Data(f.root.bytes).write(to: URL(fileURLWithPath: f.dir.file("root.json")))
    }

    /// Version 2: dd added, bb changed, cc removed, aa's darwin-arm64 golden file added.
    func publishV2() throws {
      try f.publish(
        try f.writeInput(
          "v2",
          recipes: [
            "aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb", description: "a better test tool"),
            "dd": RegistryFixture.recipe("dd"),
          ],
          golden: [
            "aa/v1.0-linux-amd64.json": RegistryFixture.golden("aa", version: "1.0"),
            "aa/v1.0-darwin-arm64.json": RegistryFixture.golden("aa", version: "1.0", os: "darwin", arch: "arm64"),
          ]),
        to: store)
    }

    func env(_ home: String) -> [String: String] { ["TSUKU_HOME": f.dir.file(home), "HOME": f.dir.path] }

    @discardableResult
    func run(_ args: String..., home: String = "home", env extra: [String: String] = [:], killAfter: Double = 60) throws
      -> CommandResult
    {
      try runTsuku(args, env: env(home).merging(extra) { $1 }, binary: bin, killAfter: killAfter)
    }

    /// `tsuku init` with the fixture's root and this store, then a sync.
    func initAndSync(home: String = "home") throws {
      var r = try run("init", "--root", f.dir.file("root.json"), "--source", url, home: home)
      #expect(r.status == 0, "\(r.stderr)")
      r = try run("update-registry", home: home)
      #expect(r.status == 0, "\(r.stderr)")
    }
  }

  static let expectedLines = ["+ dd", "~ bb", "- cc", "+ golden aa 1.0 darwin-arm64"]

  func json(_ r: CommandResult) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.out)")
  }

  func names(_ d: [String: Any]?, _ kind: String, _ list: String) -> [String] {
    ((d?[kind] as? [String: Any])?[list] as? [Any] ?? []).map { item in
      if let s = item as? String { return s }
      let g = item as? [String: Any] ?? [:]
      return "\(g["name"] ?? "") \(g["version"] ?? "") \(g["platform"] ?? "")"
    }
  }

  // MARK: diff and update-registry

  @Test func updateRegistryThenDiffListExactlyWhatVersionTwoChanged() throws {
    let w = try World()
    try w.initAndSync()
    try w.publishV2()

    // The sync prints its usual line, then the names (all of them: stdout is a pipe).
    var r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.out.split(separator: "\n").map(String.init)
    #expect(lines.first?.hasPrefix("index version 1 -> 2: 3 recipes, 2 golden files; fetched") == true, "\(r.out)")
    #expect(Array(lines.dropFirst()) == Self.expectedLines, "\(r.out)")

    // No arguments: before and after the last sync, from the home alone.
    r = try w.run("diff", "--offline")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(
      r.out.split(separator: "\n").map(String.init)
        == ["index version 1 -> 2: recipes +1 ~1 -1, golden files +1 ~0 -0"] + Self.expectedLines, "\(r.out)")

    // The same two versions named.
    let named = try w.run("diff", "1", "2", "--offline")
    #expect(named.status == 0, "\(named.stderr)")
    #expect(named.out == r.out)

    r = try w.run("diff", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let d = try json(r)
    #expect(d["from_version"] as? Int == 1)
    #expect(d["to_version"] as? Int == 2)
    #expect(names(d, "recipes", "added") == ["dd"])
    #expect(names(d, "recipes", "changed") == ["bb"])
    #expect(names(d, "recipes", "removed") == ["cc"])
    #expect(names(d, "golden", "added") == ["aa 1.0 darwin-arm64"])
    #expect(names(d, "golden", "changed").isEmpty && names(d, "golden", "removed").isEmpty)

    // Backwards, the other way round.
    r = try w.run("diff", "2", "1", "--offline")
    #expect(r.out.split(separator: "\n").dropFirst().map(String.init) == ["+ cc", "~ bb", "- dd", "- golden aa 1.0 darwin-arm64"], "\(r.out)")
  }

  @Test func updateRegistryJSONCarriesEveryName() throws {
    let w = try World()
    try w.initAndSync()
    try w.publishV2()
    let r = try w.run("update-registry", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let o = try json(r)
    #expect(o["index_version"] as? Int == 2)
    #expect(o["previous_version"] as? Int == 1)
    let d = o["diff"] as? [String: Any]
    #expect(names(d, "recipes", "added") == ["dd"])
    #expect(names(d, "recipes", "changed") == ["bb"])
    #expect(names(d, "recipes", "removed") == ["cc"])
    #expect(names(d, "golden", "added") == ["aa 1.0 darwin-arm64"])
    // A sync that changes nothing has no diff.
    let again = try json(try w.run("update-registry", "--json"))
    #expect(again["diff"] == nil)
  }

  @Test func aHomeThatNeverHadVersionOneReadsItFromTheArchive() throws {
    let w = try World()
    try w.publishV2()
    try w.initAndSync(home: "late")
    // No previous index: the default says what to give instead.
    var r = try w.run("diff", home: "late")
    #expect(r.status == 3, "\(r.out)")
    #expect(r.stderr.contains("no previous index") && r.stderr.contains("tsuku diff 1 2"), "\(r.stderr)")
    // Version 1 comes from the store's archive, verified.
    r = try w.run("diff", "1", "2", home: "late")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.split(separator: "\n").dropFirst().map(String.init) == Self.expectedLines, "\(r.out)")
    // Offline, it cannot be fetched: exit 5, saying why.
    r = try w.run("diff", "1", "2", "--offline", home: "late")
    #expect(r.status == 5, "\(r.out)")
    #expect(r.stderr.contains("index version 1 is not cached"), "\(r.stderr)")
    // A version no source archives.
    r = try w.run("diff", "9", home: "late")
    #expect(r.status == 3, "\(r.out)")
    #expect(r.stderr.contains("no source archives index version 9"), "\(r.stderr)")
  }

  @Test func badVersionArgumentsExit64NamingTheValue() throws {
    let w = try World()
    for (args, what) in [(["diff", "x"], "invalid FROM 'x'"), (["diff", "1", "2x"], "invalid TO '2x'"), (["diff", "0"], "invalid FROM '0'")] {
      let r = try runTsuku(args, env: w.env("home"), binary: w.bin)
      #expect(r.status == 64, "\(args) \(r.stderr)")
      #expect(r.stderr.hasPrefix("error: \(what)"), "\(r.stderr)")
      #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
  }

  /// Attack: a source swaps the archived index of version 1 for one signed by keys the trusted
  /// root does not name (another registry's), to make `diff` report changes that never were.
  @Test func forgedArchivedIndexIsRefused() throws {
    let w = try World()
    try w.publishV2()
    try w.initAndSync(home: "late")
    let other = try RegistryFixture()
    let otherStore = DirectoryStore(path: other.dir.file("store"))
    try other.initialize(otherStore)
    try other.publish(try other.writeInput("v1", recipes: ["zz": RegistryFixture.recipe("zz")]), to: otherStore)
    let forged = try #require(FileManager.default.contents(atPath: other.dir.file("store/index/1.index.json")))
    try forged.write(to: URL(fileURLWithPath: w.f.dir.file("store/index/1.index.json")))
    let r = try w.run("diff", "1", "2", home: "late")
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("is not signed by"), "\(r.stderr)")
    #expect(r.stderr.contains("refused index/1.index.json from '\(w.url)'"), "\(r.stderr)")
    #expect(!r.out.contains("zz"))
  }

  @Test func theShortListStopsAtTheLimitAndPointsAtDiff() throws {
    let added = (0..<13).map { "\"t\($0)\"" }.joined(separator: ",")
    let text = """
      {"from_version": 1, "to_version": 2, "recipes": {"added": [\(added)], "changed": [], "removed": []},
       "golden": {"added": [], "changed": [], "removed": []}}
      """
    let d = try JSONDecoder().decode(IndexDiff.self, from: Data(text.utf8))
    let lines = d.lines(limit: 10, more: " (tsuku diff)")
    #expect(lines.count == 11)
    #expect(lines.first == "+ t0")
    #expect(lines.last == "  and 3 more (tsuku diff)")
    #expect(d.lines().count == 13)
  }

  /// On a terminal (a pseudo-terminal made by `script`), a sync lists at most 10 names of a
  /// kind and points at `tsuku diff` for the rest.
  @Test func onATerminalTheSyncListIsShort() throws {
    let w = try World()
    try w.initAndSync()
    var recipes = ["aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb"), "cc": RegistryFixture.recipe("cc")]
    for i in 10..<22 { recipes["n\(i)"] = RegistryFixture.recipe("n\(i)") }
    try w.f.publish(
      try w.f.writeInput("many", recipes: recipes, golden: ["aa/v1.0-linux-amd64.json": RegistryFixture.golden("aa", version: "1.0")]),
      to: w.store)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
    p.arguments = ["-qec", "'\(w.bin)' update-registry", "/dev/null"]
    p.environment = w.env("home").merging(["PATH": "/usr/bin:/bin"]) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let lines = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
    #expect(p.terminationStatus == 0, "\(lines)")
    #expect(lines.filter { $0.hasPrefix("+ ") } == (10..<20).map { "+ n\($0)" }, "\(lines)")
    #expect(lines.last == "  and 2 more (tsuku diff)", "\(lines)")
    // In a pipe, every name.
    let all = try w.run("diff", "--offline")
    #expect(all.out.split(separator: "\n").filter { $0.hasPrefix("+ ") }.count == 12, "\(all.out)")
  }

  // MARK: doctor

  @Test func doctorOnAHealthyHomeExitsZero() throws {
    let w = try World()
    try w.initAndSync()
    var r = try w.run("doctor")
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("no problems found"), "\(r.out)")
    #expect(r.out.contains("healthy: \(w.url), index version 1"), "\(r.out)")
    #expect(r.out.contains("version 1 (home), expires"), "\(r.out)")
    // Aligned: every value starts in the same column.
    let rows = r.out.split(separator: "\n", omittingEmptySubsequences: false).prefix(while: { !$0.isEmpty })
    // The value of a labelled row starts after the first run of two spaces or more.
    let columns = rows.filter { !$0.hasPrefix(" ") }.map { row in
      let gap = row.range(of: "  ")!.lowerBound
      return row.distance(from: row.startIndex, to: row[gap...].firstIndex(where: { $0 != " " })!)
    }
    #expect(rows.count == 7, "\(r.out)")
    #expect(columns.count == 6, "\(r.out)")
    #expect(Set(columns).count == 1, "\(r.out)")
    r = try w.run("doctor", "--json")
    #expect(r.status == 0)
    let o = try json(r)
    #expect(o["healthy"] as? Bool == true)
    #expect((o["problems"] as? [Any])?.isEmpty == true)
    #expect(((o["sources"] as? [String: Any])?["sources"] as? [[String: Any]])?.first?["status"] as? String == "healthy")
    #expect((o["revocations"] as? [String: Any])?["fresh"] as? Bool == true)
  }

  @Test func doctorNamesAnUnreachableSourceAndTheFix() throws {
    let w = try World()
    try w.initAndSync()
    // A port nothing listens on.
    let r = try w.run("doctor", env: ["TSUKU_SOURCES": "http://127.0.0.1:9/reg"])
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("sources: 'http://127.0.0.1:9/reg' does not answer"), "\(r.out)")
    #expect(r.out.contains("fix: check the URL and the network, or fix or unset TSUKU_SOURCES"), "\(r.out)")
  }

  @Test func doctorWithSourcesOffSaysToUnsetThem() throws {
    let w = try World()
    try w.initAndSync()
    let r = try w.run("doctor", env: ["TSUKU_SOURCES": "off"])
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("TSUKU_SOURCES is 'off'"), "\(r.out)")
    #expect(r.out.contains("fix: unset TSUKU_SOURCES"), "\(r.out)")
    let o = try json(try w.run("doctor", "--json", env: ["TSUKU_SOURCES": "off"]))
    #expect(o["healthy"] as? Bool == false)
    #expect((o["problems"] as? [[String: Any]])?.first?["fix"] as? String == "unset TSUKU_SOURCES")
  }

  @Test func doctorBeforeInitSaysToInit() throws {
    let w = try World()
    let r = try w.run("doctor", home: "never", env: ["TSUKU_DEFAULT_SOURCE": ""])
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("tsuku init --source URL"), "\(r.out)")
  }

  /// A source that accepts the connection and never answers costs the probe's bound (3 s),
  /// not the command's 30 s budget.
  @Test func doctorsProbeOfASourceThatNeverAnswersIsBounded() throws {
    let w = try World()
    try w.initAndSync()
    let hanging = try LoopbackServer { _ in .hang }
    defer { hanging.stop() }
    let start = Date()
    let r = try w.run("doctor", env: ["TSUKU_SOURCES": hanging.url + "/reg|" + w.url], killAfter: 30)
    let elapsed = Date().timeIntervalSince(start)
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(elapsed < 6, "doctor took \(elapsed) s")
    #expect(r.out.contains("unreachable: \(hanging.url)/reg"), "\(r.out)")
    #expect(r.out.contains("healthy: \(w.url)"), "\(r.out)")
  }

  /// The root expires: doctor says so, and what to do, judged by the injected clock.
  @Test func doctorReportsAnExpiredRoot() throws {
    let w = try World()
    try w.initAndSync()
    let env = w.env("home").merging(["TSUKU_SOURCES": w.url]) { $1 }
    let fine = Doctor.check(environment: env, now: w.f.now)
    #expect(fine.healthy, "\(fine.problems)")
    #expect(fine.root.days_left == 364 || fine.root.days_left == 365)
    let later = Doctor.check(environment: env, now: w.f.now.addingTimeInterval(400 * 86400))
    #expect(!later.healthy)
    let p = try #require(later.problems.first { $0.area == "root" })
    #expect(p.problem.hasPrefix("trusted root version 1 expired at"), "\(p.problem)")
    #expect(p.fix.contains("publish a new root"), "\(p.fix)")
    #expect(later.root.days_left ?? 0 < 0)
  }
}
