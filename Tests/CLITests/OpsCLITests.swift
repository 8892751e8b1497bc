import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `registry validate` and `registry gc` through the binary: exit codes, files, JSON, and an
/// outage of a SeaweedFS of the test's own with the git history as the fallback.
@Suite struct OpsCLITests {
  @Test func validateWritesTheDashboardAndJSONAndRemovesAStaleIssueFile() throws {
    let w = try CLIWorld()
    try w.setUp()
    let md = w.dir.file("status.md")
    let issue = w.dir.file("issue.md")
    try Data("stale".utf8).write(to: URL(fileURLWithPath: issue))
    let exclusions = w.dir.file("exclusions.json")
    // The sample lacks golden files for some recipes: excuse every platform of every recipe.
    let names = try #require(try JSONSerialization.jsonObject(with: w.run("list", "--json").stdout) as? [[String: Any]])
      .compactMap { $0["name"] as? String }
    let list = names.map { #"{"recipe": "\#($0)", "reason": "sample registry"}"# }.joined(separator: ",")
    try Data(#"{"exclusions": [\#(list)]}"#.utf8).write(to: URL(fileURLWithPath: exclusions))
    var r = try w.run(
      "registry", "validate", "--source", w.store, "--root", w.dir.file("store/root/1.root.json"), "--exclusions", exclusions,
      "--status-md", md, "--issue-md", issue, "--json")
    #expect(r.status == 0, "\(r.out)\(r.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(json["status"] as? String == "passed")
    #expect((json["recipes"] as? [String: Any])?["failed"] as? Int == 0)
    #expect(json["issue"] == nil)
    #expect(!FileManager.default.fileExists(atPath: issue), "a stale issue file is removed on a pass")
    let dashboard = try String(contentsOfFile: md, encoding: .utf8)
    #expect(dashboard.contains("| Status | **PASSED** |"))

    // Without the exclusions the sample's gaps are failures: exit 2, an issue file.
    r = try w.run("registry", "validate", "--source", w.store, "--root", w.dir.file("store/root/1.root.json"), "--new-days", "0",
      "--status-md", md, "--issue-md", issue)
    #expect(r.status == 2)
    #expect(r.out.hasPrefix("failed: \(w.store)\n"))
    #expect(r.out.contains("failure no-golden: 'ack' has no golden files"))
    let text = try String(contentsOfFile: issue, encoding: .utf8)
    #expect(text.hasPrefix("Registry validation failed: "))
    #expect(text.contains("\n\nThe nightly registry validation of `\(w.store)`"))
  }

  @Test func validateRefusesBadOptionsWithExit64() throws {
    let w = try CLIWorld()
    for (args, message) in [
      (["--source", "file:///x", "--quota", "lots"], "invalid --quota 'lots'"),
      (["--source", "file:///x", "--timeout-objects", "0"], "invalid --timeout-objects '0.0'"),
      (["--source", "file:///x", "--platform", "plan9-amd64"], "invalid --platform 'plan9-amd64'"),
      (["--source", "ftp://x"], "ftp://x"),
    ] {
      let r = try w.run(["registry", "validate"] + args)
      #expect(r.status == 64, "\(args)")
      #expect(r.stderr.contains(message), "\(r.stderr)")
    }
    let r = try w.run("registry", "gc", "--to", "file:///x", "--min-age", "7")
    #expect(r.status == 64)
    #expect(r.stderr.contains("invalid --min-age '7': expected a duration with a unit, e.g. 7d or 36h"))
  }

  @Test func validateAgainstAStoppedSeaweedFSUsesTheGitFallbackAndExits2() throws {
    let own: OwnS3Server
    do { own = try OwnS3Server() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let w = try CLIWorld()
    let admin = ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    let bucket = "s3://\(try own.makeBucket())/v1?endpoint=\(own.endpoint)"
    let repo = try makeGitRepository(at: w.dir.file("registry.git"), bare: true)
    let git = "git+file://\(repo)?dir=store"
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    var r = try w.run(
      "registry", "init", "--to", git, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    // The same root in the bucket, then one publish to both.
    let root = try #require(try GitStore(repository: repo, subdirectory: "store").readDocument(.root(1), maxSize: 1 << 20))
    try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
    try S3Store(S3Location(bucket: String(bucket.dropFirst(5).prefix { $0 != "/" }), prefix: "v1", endpoint: own.endpoint),
      credentials: S3TestServer.admin, transport: CurlTransport()).apply(StoreChange(documents: [(.root(1), root)]))
    let sample = checkout + "/registry-index/source"
    r = try w.run(
      "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden", sample + "/golden",
      "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--to", bucket, "--to", git, env: admin)
    #expect(r.status == 0, "\(r.stderr)")

    let md = w.dir.file("status.md")
    let args = [
      "registry", "validate", "--source", bucket, "--fallback", git, "--root", w.dir.file("root.json"), "--timeout-health", "5",
      "--quota", "1GB", "--status-md", md, "--issue-md", w.dir.file("issue.md"), "--json",
    ]
    r = try w.run(args, env: admin)
    // The sample has recipes without golden files: failures, but not degraded.
    var json = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(json["status"] as? String == "failed", "\(r.stderr)")
    #expect(((json["source"] as? [String: Any])?["health"] as? [String: Any])?["status"] as? String == "healthy")
    #expect((json["bucket"] as? [String: Any])?["quota"] as? Int == 1 << 30)

    own.stop()
    let start = Date()
    r = try w.run(args, env: admin)
    #expect(Date().timeIntervalSince(start) < 40)
    #expect(r.status == 2)
    json = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(json["status"] as? String == "degraded")
    let reason = try #require(json["reason"] as? String)
    #expect(reason.contains("unreachable") && reason.contains("validated from the fallback '\(git)'"))
    #expect((json["fallback"] as? [String: Any])?["validated"] as? Bool == true)
    #expect((json["source"] as? [String: Any])?["validated"] as? Bool == false)
    let dashboard = try String(contentsOfFile: md, encoding: .utf8)
    #expect(dashboard.contains("| Status | **DEGRADED** — source '\(bucket)' unreachable ("))
    #expect(dashboard.contains("validated from the fallback '\(git)'"))
    #expect(dashboard.contains("| health | failed |"))
    let issue = try String(contentsOfFile: w.dir.file("issue.md"), encoding: .utf8)
    #expect(issue.hasPrefix("Registry validation degraded: the source is unreachable, validated from the fallback; "))
    #expect(issue.contains("ended **degraded**: source '\(bucket)' unreachable ("))

    // Without the fallback the same outage is exit 5, with the reason.
    r = try w.run("registry", "validate", "--source", bucket, "--root", w.dir.file("root.json"), "--timeout-health", "3", env: admin)
    #expect(r.status == 5)
    #expect(r.out.hasPrefix("skipped: \(bucket) — source '\(bucket)' unreachable ("))
    #expect(r.out.contains("no --fallback given"))
  }

  @Test func gcDryRunThenRunOnADirectoryStore() throws {
    let w = try CLIWorld()
    try w.setUp()
    // A second publish without some recipes leaves their blobs unreferenced by version 2.
    let fewer = w.dir.file("fewer")
    try FileManager.default.createDirectory(atPath: fewer + "/f", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml", toPath: fewer + "/f/fzf.toml")
    var r = try w.run("registry", "publish", "--recipes", fewer, "--key", w.k("index"), "--to", w.store, "--allow-removals")
    #expect(r.status == 0, "\(r.stderr)")
    let later = Timestamp.format(Date().addingTimeInterval(30 * 86400))
    let objects = w.dir.file("store/objects/sha256")
    func count() -> Int { regularFiles(under: objects) }
    let before = count()
    r = try w.run("registry", "gc", "--to", w.store, "--keep-index-versions", "1", "--dry-run", "--json", "--now", later)
    #expect(r.status == 0, "\(r.stderr)")
    let dry = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(dry["dry_run"] as? Bool == true)
    let would = try #require((dry["quarantined"] as? [String: Any])?["objects"] as? Int)
    #expect(would > 100)
    #expect(count() == before)
    r = try w.run("registry", "gc", "--to", w.store, "--keep-index-versions", "1", "--now", later)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.hasPrefix("kept index versions 2 ("))
    #expect(r.out.contains("quarantine \(would) blobs"))
    #expect(count() == before - would)
    #expect(regularFiles(under: w.dir.file("store/quarantine/sha256")) == would)
    // The client still syncs and reads what version 2 pins.
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try w.run("show", "fzf").status == 0)
  }
}

/// How many regular files are under `root`.
func regularFiles(under root: String) -> Int {
  guard let walker = FileManager.default.enumerator(atPath: root) else { return 0 }
  var n = 0
  while let rel = walker.nextObject() as? String {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue { n += 1 }
  }
  return n
}

extension CLIWorld {
  @discardableResult
  func run(_ args: [String], env extra: [String: String] = [:]) throws -> CommandResult {
    try runTsuku(args, env: env.merging(extra) { $1 }, binary: bin)
  }
}
