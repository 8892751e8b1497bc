import Foundation
import Store
@testable import Sync
import Testing

import TestSupport

/// Golden files of `name` for the three default platforms.
func fullGolden(_ name: String, version: String = "1.0.0") -> [String: String] {
  [
    "\(name)/v\(version)-linux-amd64.json": RegistryFixture.golden(name, version: version),
    "\(name)/v\(version)-darwin-amd64.json": RegistryFixture.golden(name, version: version, os: "darwin"),
    "\(name)/v\(version)-darwin-arm64.json": RegistryFixture.golden(name, version: version, os: "darwin", arch: "arm64"),
  ]
}

/// A small registry in a directory store: `fzf` and `jq` with every golden file, `bash` with
/// `supported_os = ["linux"]` and a golden file per Linux family only.
struct ValidateWorld {
  let f: RegistryFixture
  let store: DirectoryStore
  var url: String { "file://" + store.root }

  init(now: Date = Date(), expiresDays: Int = 30, extra: [String: String] = [:], golden extraGolden: [String: String] = [:])
    throws
  {
    f = try RegistryFixture(now: now)
    store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    var golden = fullGolden("fzf").merging(fullGolden("jq", version: "1.7")) { a, _ in a }
    for fam in ["debian", "rhel"] {
      golden["bash/v5.3-linux-\(fam)-amd64.json"] = RegistryFixture.golden("bash", version: "5.3", family: fam)
    }
    golden.merge(extraGolden) { a, _ in a }
    let linuxOnly = RegistryFixture.recipe("bash").replacingOccurrences(
      of: "homepage = \"https://example.invalid/bash\"\n", with: "homepage = \"https://example.invalid/bash\"\nsupported_os = [\"linux\"]\n")
    var recipes = ["fzf": RegistryFixture.recipe("fzf"), "jq": RegistryFixture.recipe("jq")]
    recipes.merge(extra) { a, _ in a }
    try f.publish(f.writeInput(recipes: recipes, critical: ["bash": linuxOnly], golden: golden), to: store, expiresDays: expiresDays)
  }

  func options(at time: Date? = nil) -> ValidateOptions {
    ValidateOptions(source: url, root: f.root, now: time ?? f.now, environment: [:])
  }

  /// The blob of `name`'s golden file on `platform`.
  func goldenID(_ name: String, _ platform: String) throws -> ObjectID {
    let v = try #require(try IndexContents.verify(try #require(try store.readDocument(.index, maxSize: 65536)), store: store, what: "index"))
    let c = try IndexContents.load(v, from: [store])
    return try #require(c.entries.first { $0.name == name }?.golden.first { $0.platform == platform }?.sha256)
  }

  func recipeID(_ name: String) throws -> ObjectID {
    let v = try IndexContents.verify(try #require(try store.readDocument(.index, maxSize: 65536)), store: store, what: "index")
    return try #require(try IndexContents.load(v, from: [store]).entries.first { $0.name == name }?.recipe.sha256)
  }
}

@Suite struct ValidateTests {
  @Test func aCompleteRegistryPassesWithEveryObjectChecked() throws {
    let w = try ValidateWorld()
    let r = Validator.run(w.options())
    #expect(r.status == "passed", "\(r.failures)")
    #expect(r.exit_code == 0)
    #expect(r.failures.isEmpty)
    #expect(r.issue == nil)
    #expect(r.recipes.total == 3 && r.recipes.passed == 3)
    // tree, 1+ shards, revocation list, 3 recipes, 8 golden files
    #expect(r.source.objects_checked == r.index?.objects)
    #expect((r.index?.objects ?? 0) >= 13)
    #expect(r.stages.map(\.name) == ["health", "index", "objects", "golden"])
    #expect(r.stages.allSatisfy { $0.status == "ok" })
    #expect(r.bucket?.objects == r.index?.objects)
    #expect((r.bucket?.bytes ?? 0) > 0)
  }

  @Test func aMissingObjectIsAFailureNamingTheRecipe() throws {
    let w = try ValidateWorld()
    let id = try w.goldenID("jq", "darwin-arm64")
    try w.store.remove([id])
    let r = Validator.run(w.options())
    #expect(r.status == "failed")
    #expect(r.exit_code == 2)
    let f = try #require(r.failures.first { $0.kind == "missing-object" })
    #expect(f.recipe == "jq")
    #expect(f.object == id.hex)
    #expect(f.message.contains("golden file of 'jq' 1.7 on darwin-arm64"))
    #expect(r.source.missing == 1)
    #expect(r.recipes.failed == 1 && r.recipes.passed == 2)
    #expect(r.issue?.title.contains("1 missing-object") == true)
  }

  @Test func aCorruptObjectIsAFailure() throws {
    let w = try ValidateWorld()
    let id = try w.recipeID("fzf")
    let path = w.store.root + "/" + id.path
    var bytes = try #require(FileManager.default.contents(atPath: path))
    bytes[bytes.startIndex] ^= 0x20
    try bytes.write(to: URL(fileURLWithPath: path))
    let r = Validator.run(w.options())
    #expect(r.exit_code == 2)
    let f = try #require(r.failures.first { $0.kind == "corrupt-object" })
    #expect(f.recipe == "fzf")
    #expect(f.message.contains("is corrupt"))
    #expect(r.source.corrupt == 1)
    // A corrupt recipe cannot be read for its platforms: it is failed, not counted twice.
    #expect(r.recipes.failed == 1)
  }

  @Test func aRecipeWithoutGoldenFilesIsAFailureUnlessItIsNew() throws {
    let day = 86400.0
    let f = try RegistryFixture(now: Date().addingTimeInterval(-20 * day))
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    // Version 1, 20 days ago: 'old' has no golden files, 'fzf' has all of them.
    let v1 = try f.writeInput("v1", recipes: ["old": RegistryFixture.recipe("old"), "fzf": RegistryFixture.recipe("fzf")], golden: fullGolden("fzf"))
    try f.publish(v1, to: store)
    // Version 2, today: 'fresh' is new and has none either; 'half' is new and has one of three.
    let now = f.now.addingTimeInterval(20 * day)
    let v2 = try f.writeInput(
      "v2",
      recipes: [
        "old": RegistryFixture.recipe("old"), "fzf": RegistryFixture.recipe("fzf"), "fresh": RegistryFixture.recipe("fresh"),
        "half": RegistryFixture.recipe("half"),
      ], golden: fullGolden("fzf").merging(["half/v1-linux-amd64.json": RegistryFixture.golden("half", version: "1")]) { a, _ in a })
    try f.publish(v2, to: store, at: now)
    #expect(try store.readDocument(.archivedIndex(1), maxSize: 65536) != nil)

    var o = ValidateOptions(source: "file://" + store.root, root: f.root, now: now, environment: [:])
    var r = Validator.run(o)
    #expect(r.exit_code == 2)
    let old = try #require(r.failures.first { $0.recipe == "old" })
    #expect(old.kind == "no-golden")
    #expect(old.platforms == ["linux-amd64", "darwin-amd64", "darwin-arm64"])
    // A new recipe with some golden files but not all is still a failure; one with none is reported.
    #expect(r.failures.first { $0.recipe == "half" }?.kind == "missing-golden")
    #expect(r.failures.first { $0.recipe == "half" }?.platforms == ["darwin-amd64", "darwin-arm64"])
    #expect(r.new_recipes_without_golden == ["fresh"])
    #expect(!r.failures.contains { $0.recipe == "fresh" })
    #expect(r.markdown.contains("## New recipes without golden files (1)"))

    // With --new-days 0 nothing is new.
    o.newDays = 0
    r = Validator.run(o)
    #expect(r.failures.first { $0.recipe == "fresh" }?.kind == "no-golden")
    #expect(r.new_recipes_without_golden.isEmpty)
  }

  @Test func anExclusionExcusesMissingGoldenFilesAndIsReported() throws {
    let w = try ValidateWorld(extra: ["mac-gap": RegistryFixture.recipe("mac-gap"), "none": RegistryFixture.recipe("none")],
      golden: ["mac-gap/v2-linux-amd64.json": RegistryFixture.golden("mac-gap", version: "2"),
        "mac-gap/v2-darwin-amd64.json": RegistryFixture.golden("mac-gap", version: "2", os: "darwin")])
    var o = w.options()
    o.newDays = 0
    #expect(Validator.run(o).failures.filter { ["mac-gap", "none"].contains($0.recipe) }.count == 2)
    o.exclusions = try GoldenExclusions.parse(
      Data(
        """
        {"$schema": "x", "description": "the shape of tsuku's registry/golden/exclusions.json",
         "exclusions": [
          {"recipe": "mac-gap", "platform": {"os": "darwin", "arch": "arm64"}, "issue": "https://github.com/o/r/issues/1", "reason": "no arm64 build upstream"},
          {"recipe": "none", "reason": "library without an executable"},
          {"recipe": "gone", "platform": "linux-amd64", "reason": "removed recipe"}
         ]}
        """.utf8), what: "exclusions")
    let r = Validator.run(o)
    #expect(r.status == "passed", "\(r.failures)")
    #expect(r.exclusions_applied.count == 4)
    #expect(r.exclusions_applied.contains { $0.recipe == "mac-gap" && $0.platform == "darwin-arm64" && $0.reason == "no arm64 build upstream" })
    #expect(r.exclusions_applied.filter { $0.recipe == "none" }.map(\.platform) == ["linux-amd64", "darwin-amd64", "darwin-arm64"])
    #expect(r.stale_exclusions.map(\.recipe) == ["gone"])
    #expect(r.markdown.contains("| mac-gap | darwin-arm64 | no arm64 build upstream |"))
  }

  @Test func exclusionFilesAreCheckedEntryByEntry() throws {
    #expect(throws: TsukuError.self) { try GoldenExclusions.parse(Data(#"{"exclusions":[{"recipe":"x"}]}"#.utf8), what: "f") }
    #expect(throws: TsukuError.self) { try GoldenExclusions.parse(Data(#"{"exclusions":[{"recipe":"x","reason":"r","platform":"mars-amd64"}]}"#.utf8), what: "f") }
    #expect(throws: TsukuError.self) { try GoldenExclusions.parse(Data(#"[1]"#.utf8), what: "f") }
    do {
      _ = try GoldenExclusions.parse(Data(#"{"exclusions":[{"recipe":"a","reason":"ok"},{"recipe":"b","reason":""}]}"#.utf8), what: "exclusions file 'e.json'")
      Issue.record("an empty reason was accepted")
    } catch let e as TsukuError {
      #expect(e.code == .usage)
      #expect(e.message == "exclusions file 'e.json', exclusion 2: 'b' needs a one-line 'reason'")
    }
  }

  @Test func platformsComeFromTheRecipeMetadata() throws {
    let toml = """
      [metadata]
      name = "x"
      supported_os = ["linux", "darwin"]
      unsupported_platforms = ["darwin/amd64", "linux/arm64/musl"]
      """
    #expect(GoldenCoverage.supported(recipe: Data(toml.utf8), required: GoldenCoverage.defaultPlatforms) == ["linux-amd64", "darwin-arm64"])
    let arch = "[metadata]\nname = \"y\"\nsupported_arch = [\"arm64\"]\n"
    #expect(GoldenCoverage.supported(recipe: Data(arch.utf8), required: GoldenCoverage.defaultPlatforms) == ["darwin-arm64"])
    let g = try JSONDecoder().decode(
      [GoldenRef].self, from: Data(#"[{"platform":"linux-debian-amd64","version":"1","sha256":"\#(SHA256.hash("a").hex)","size":1}]"#.utf8))
    #expect(GoldenCoverage.covers(g, "linux-amd64"))
    #expect(!GoldenCoverage.covers(g, "linux-arm64"))
    #expect(!GoldenCoverage.covers(g, "linux-rhel-amd64"))
  }

  @Test func theDashboardShowsStatusCountsFailuresBucketExpiryAndAlerts() throws {
    let w = try ValidateWorld(expiresDays: 30)
    try w.store.remove([try w.goldenID("fzf", "linux-amd64")])
    var o = w.options(at: w.f.now.addingTimeInterval(25 * 86400))
    o.quota = 4096
    let r = Validator.run(o)
    let md = r.markdown
    #expect(md.hasPrefix("# Registry validation status\n"))
    #expect(md.contains("| Last run | \(Timestamp.format(o.now)) |"))
    #expect(md.contains("| Status | **FAILED** |"))
    #expect(md.contains("| Recipes | 2 passed, 1 failed (of 3) |"))
    #expect(md.contains("| Failures | 1 |"))
    #expect(md.contains("| missing-object | fzf | source | golden file of 'fzf' 1.0.0 on linux-amd64"))
    #expect(md.contains("expires \(try #require(r.index?.expires)) (5.0 days left)"))
    #expect(md.contains("| Revocation list | version 1, expires"))
    let bytes = try #require(r.bucket?.bytes)
    #expect(md.contains("| Storage | \(ByteSize.describe(bytes)) in \(try #require(r.bucket?.objects)) objects of 4.0 KB quota ("))
    #expect(md.contains("- **index-expiry**: the index (version 1) expires at"))
    #expect(md.contains("- **quota**: the bucket holds"))
    #expect(md.contains("| health | ok |"))
    #expect(md.contains("| golden | ok |"))
    #expect(md.contains("| objects | failed |"))
    let issue = try #require(r.issue)
    #expect(issue.title == "Registry validation failed: 1 failure (1 missing-object)")
    #expect(issue.body.contains("## Alerts"))
    #expect(issue.body.contains("golden file of 'fzf' 1.0.0 on linux-amd64"))
    // The JSON carries the same.
    let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as? [String: Any]
    #expect(json?["status"] as? String == "failed")
    #expect((json?["failures"] as? [[String: Any]])?.first?["kind"] as? String == "missing-object")
    #expect((json?["issue"] as? [String: Any])?["title"] as? String == issue.title)
  }

  @Test func expiryAndQuotaAlertsWarnBeforeAnythingFails() throws {
    let w = try ValidateWorld(expiresDays: 10)
    // 4 days later: 6 days left, within the default 7.
    var o = w.options(at: w.f.now.addingTimeInterval(4 * 86400))
    let total = try w.store.inventory(.live, dated: false).reduce(0) { $0 + $1.size }
    o.quota = Int(Double(total) / 0.85)
    var r = Validator.run(o)
    #expect(r.status == "passed")
    #expect(r.exit_code == 0)
    #expect(Set(r.alerts.map(\.kind)) == ["index-expiry", "revocation-expiry", "quota"])
    #expect(r.alerts.first { $0.kind == "quota" }?.message.contains("85.0%") == true)
    #expect(r.issue?.title.hasPrefix("Registry validation alerts: ") == true)
    // Under 80% and outside the window: no alert.
    o.quota = total * 2
    o.warnDays = 5
    r = Validator.run(o)
    #expect(r.alerts.isEmpty)
    #expect(r.issue == nil)
    // After the expiry: a failure, and still an alert.
    o = w.options(at: w.f.now.addingTimeInterval(11 * 86400))
    r = Validator.run(o)
    #expect(r.exit_code == 2)
    #expect(r.failures.filter { $0.kind == "expired" }.count == 2)
    #expect(r.failures.first { $0.kind == "expired" }?.message.contains("clients refuse it") == true)
  }

  @Test func anUnreachableSourceWithoutFallbackIsSkippedQuicklyWithTheReason() throws {
    let f = try RegistryFixture()
    var o = ValidateOptions(source: "s3://gone/reg?endpoint=http://127.0.0.1:1", root: f.root, now: f.now, environment: [:])
    o.timeouts.health = 3
    let start = Date()
    let r = Validator.run(o)
    #expect(Date().timeIntervalSince(start) < 15)
    #expect(r.status == "skipped")
    #expect(r.exit_code == 5)
    #expect(r.reason?.contains("unreachable") == true)
    #expect(r.reason?.contains("no --fallback given") == true)
    #expect(r.stages.map(\.status) == ["failed", "skipped", "skipped", "skipped"])
    #expect(r.issue?.title == "Registry validation skipped: the source is unreachable and no fallback could be validated")
    #expect(r.issue?.body.contains("no --fallback given") == true)
    #expect(r.markdown.contains("| Status | **SKIPPED** — source"))
  }

  @Test func aStageThatRunsOutOfTimeIsAFailureNotAPass() throws {
    let w = try ValidateWorld()
    var o = w.options()
    o.timeouts.objects = 0.000_001
    let r = Validator.run(o)
    #expect(r.exit_code == 2)
    #expect(r.stages.first { $0.name == "objects" }?.status == "timed_out")
    #expect(r.failures.contains { $0.kind == "timeout" && $0.message.hasPrefix("stage 'objects' timed out") })
    // Nothing was read, so no recipe counts as passed.
    #expect(r.recipes.passed == 0)
    #expect(r.recipes.unchecked == 3)
  }

  @Test func aFallbackThatServesAnOlderIndexIsAMismatch() throws {
    let w = try ValidateWorld()
    let old = DirectoryStore(path: w.f.dir.file("old"))
    try w.f.initialize(old)
    try w.f.publish(try w.f.writeInput("o", recipes: ["fzf": RegistryFixture.recipe("fzf")], golden: fullGolden("fzf")), to: old)
    // The source moves on to version 2.
    try w.f.publish(
      try w.f.writeInput("n", recipes: ["fzf": RegistryFixture.recipe("fzf"), "jq": RegistryFixture.recipe("jq")],
        golden: fullGolden("fzf").merging(fullGolden("jq", version: "1.7")) { a, _ in a }), to: w.store)
    var o = w.options()
    o.fallback = "file://" + old.root
    let r = Validator.run(o)
    #expect(r.exit_code == 2)
    let m = try #require(r.failures.first { $0.kind == "index-mismatch" })
    #expect(m.target == o.fallback)
    #expect(m.message.contains("serves index version 1"))
    #expect(r.index?.version == 2)
    // The fallback is checked against the newest index: it lacks jq's blobs.
    #expect(r.failures.contains { $0.kind == "missing-object" && $0.recipe == "jq" && $0.target == o.fallback })
  }
}

/// The static credentials that remain after OIDC publishing are rotated on time: validate
/// alerts when one is due within --warn-days, and once it is past.
@Suite struct CredentialExpiryTests {
  @Test func validateAlertsWhenStaticCredentialsAreDueForRotation() throws {
    let fx = try RegistryFixture()
    var o = ValidateOptions(source: "file:///nowhere", root: fx.root, now: fx.now)
    o.warnDays = 14
    o.credentialExpiries = [
      ("read-key", fx.now.addingTimeInterval(10 * 86400)), ("old-key", fx.now.addingTimeInterval(-86400)),
      ("fresh-key", fx.now.addingTimeInterval(90 * 86400)),
    ]
    let alerts = Validator.credentialAlerts(o)
    #expect(alerts.map(\.kind) == ["credentials-expiry", "credentials-expiry"])
    #expect(alerts[0].message.hasPrefix("credentials 'read-key' expire at "))
    #expect(alerts[0].message.contains("in 10.0 days (within 14); rotate them"))
    #expect(alerts[1].message.hasPrefix("credentials 'old-key' expired at "))
    // And they reach the report (and so the dashboard and the issue).
    let r = Validator.run(o)
    #expect(r.alerts.filter { $0.kind == "credentials-expiry" }.count == 2)
    #expect(r.issue?.body.contains("credentials 'read-key' expire at") == true)
  }
}
