import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Validation against real SeaweedFS servers: the shared one (healthy), and one of the test's
/// own that it stops (an outage, with the git history as the fallback).
@Suite struct ValidateBucketTests {
  static var admin: [String: String] {
    ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
  }

  func input(_ f: RegistryFixture) throws -> PublishInput {
    try f.writeInput(
      recipes: ["fzf": RegistryFixture.recipe("fzf"), "jq": RegistryFixture.recipe("jq")],
      golden: fullGolden("fzf").merging(fullGolden("jq", version: "1.7")) { a, _ in a })
  }

  @Test func validateAgainstAHealthySeaweedFSChecksEveryObjectAndThePacks() throws {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let bucket = try server.makeBucket(prefix: "val")
    let store = server.store(bucket: bucket, prefix: "reg")
    let f = try RegistryFixture()
    try f.initialize(store)
    let published = try Publisher.publish(
      try input(f), keys: [f.indexKey], revocationKeys: [f.revocationKey], to: [store], expiresDays: 30, now: f.now, packs: true)
    let url = "s3://\(bucket)/reg?endpoint=\(server.endpoint)"
    var o = ValidateOptions(source: url, root: f.root, now: f.now, environment: Self.admin)
    o.quota = 1 << 30
    let r = Validator.run(o)
    #expect(r.status == "passed", "\(r.failures)")
    #expect(r.exit_code == 0)
    #expect(r.source.health?.status == "healthy")
    #expect(r.index?.version == published.indexVersion)
    // 2 recipes, 6 golden files, the tree, the shard(s), the revocation list and the pack.
    #expect(r.source.objects_checked == r.index?.objects)
    #expect((r.index?.objects ?? 0) >= 11)
    #expect(r.source.missing == 0 && r.source.corrupt == 0)
    let listed = try store.inventory(.live, dated: false)
    #expect(r.bucket?.objects == listed.count)
    #expect(r.bucket?.bytes == listed.reduce(0) { $0 + $1.size })
    #expect(r.bucket?.percent == 0)
    #expect(r.alerts.isEmpty)
  }

  @Test func validateAgainstAStoppedSeaweedFSFallsBackToGitAndIsDegraded() throws {
    let own: OwnS3Server
    do { own = try OwnS3Server() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let bucket = try own.makeBucket()
    let s3 = S3Store(
      S3Location(bucket: bucket, prefix: "reg", endpoint: own.endpoint), credentials: S3TestServer.admin, transport: CurlTransport())
    let f = try RegistryFixture()
    let repo = try makeGitRepository(at: f.dir.file("repo.git"), bare: true)
    let git = try GitStore(repository: repo, subdirectory: "store")
    try f.initialize(s3)
    try f.initialize(git)
    try Publisher.publish(try input(f), keys: [f.indexKey], revocationKeys: [f.revocationKey], to: [s3, git], expiresDays: 30, now: f.now)
    let source = "s3://\(bucket)/reg?endpoint=\(own.endpoint)"
    let fallback = "git+file://\(repo)?dir=store"
    var o = ValidateOptions(source: source, fallback: fallback, root: f.root, now: f.now, environment: Self.admin)
    o.timeouts.health = 5

    var r = Validator.run(o)
    #expect(r.status == "passed", "\(r.failures)")
    #expect(r.source.validated && r.fallback?.validated == true)
    #expect(r.fallback?.objects_checked == r.source.objects_checked)

    own.stop()
    let start = Date()
    r = Validator.run(o)
    #expect(Date().timeIntervalSince(start) < 30, "the health check is bounded")
    #expect(r.status == "degraded")
    #expect(r.exit_code == 2)
    #expect(r.source.health?.reachable == false)
    #expect(!r.source.validated)
    #expect(r.fallback?.validated == true)
    #expect(r.fallback?.objects_checked == r.index?.objects)
    #expect(r.failures.isEmpty, "the fallback itself is complete")
    let reason = try #require(r.reason)
    #expect(reason.hasPrefix("source '\(source)' unreachable ("))
    #expect(reason.hasSuffix("validated from the fallback '\(fallback)'"))
    #expect(r.bucket?.bytes == nil)
    #expect(r.bucket?.error == "the source is unreachable")
    let md = r.markdown
    #expect(md.contains("| Status | **DEGRADED** — source '\(source)' unreachable"))
    #expect(md.contains("| Source | `\(source)` (unreachable"))
    #expect(md.contains("| Fallback | `\(fallback)` (healthy"))
    #expect(md.contains("| Storage | unknown: the source is unreachable |"))
    #expect(r.issue?.title == "Registry validation degraded: the source is unreachable, validated from the fallback")
    #expect(r.issue?.body.contains(reason) == true)
  }
}
