import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A revocation reaches a client that synced within its recipe TTL once the revocation TTL
/// (1h) has passed: one conditional read of index.json, a newer index taken and its revoked
/// blobs purged before anything is served; no request before then; one warning when no
/// source answers. Against SeaweedFS, the clock injected through `Client.now`, requests
/// counted by a proxy in front of the server.
@Suite(.serialized) struct RevocationFreshnessTests {
  struct World {
    let f: RegistryFixture
    let proxy: CountingProxy
    let store: S3Store
    let url: String
    let recipes: [String: String]
    func id(_ name: String) -> ObjectID { SHA256.hash(Data(recipes[name]!.utf8)) }
    /// A client of the synced home, its clock `seconds` after the sync.
    func client(at seconds: Double, sources: SourceChain? = nil, warnings: Warnings? = nil) throws -> Client {
      Client(
        home: try f.home(), chain: sources ?? SourceChain([url]), now: f.now.addingTimeInterval(seconds),
        warn: { warnings?.add($0) })
    }
  }

  final class Warnings: @unchecked Sendable {
    var lines = [String]()
    func add(_ s: String) { lines.append(s) }
  }

  /// A bucket holding a registry of aa and bb, and a client that synced it (and read aa) at
  /// `f.now`.
  func world() throws -> World {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let bucket = try server.makeBucket(prefix: "revfresh")
    let store = server.store(bucket: bucket, prefix: "reg")
    let f = try RegistryFixture()
    try f.initialize(store)
    let recipes = ["aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb")]
    try f.publish(try f.writeInput("v1", recipes: recipes), to: store)
    let proxy = try CountingProxy(upstream: server.endpoint)
    let url = proxy.endpoint + "/" + bucket + "/reg"
    let c = try f.client([url])
    #expect(try c.updateRegistry().index_version == 1)
    #expect(try c.recipe("aa") == Data(recipes["aa"]!.utf8))
    try proxy.reset()
    return World(f: f, proxy: proxy, store: store, url: url, recipes: recipes)
  }

  /// Revokes aa on the bucket a minute after the sync.
  func revokeAA(_ w: World) throws {
    try Maintainer.revoke(
      [.hash(w.id("aa"))], reason: "backdoored release", keys: [w.f.revocationKey], in: w.store, expiresDays: 10,
      now: w.f.now.addingTimeInterval(60))
  }

  func refusal(_ c: Client, _ name: String) -> TsukuError? {
    do {
      _ = try c.recipe(name)
      return nil
    } catch let e as TsukuError { return e } catch { return TsukuError(.other, "\(error)") }
  }

  @Test func aHashRevokedAfterTheSyncIsRefusedOnceTheRevocationTTLHasPassed() throws {
    let w = try world()
    try revokeAA(w)
    // Half an hour after the sync: inside the revocation TTL, served from the cache, no request.
    #expect(try w.client(at: 1800).recipe("aa") == Data(w.recipes["aa"]!.utf8))
    #expect(try w.proxy.count() == 0, "\(w.proxy.requests())")
    // Two hours after: well inside the recipe TTL (24h), past the revocation TTL (1h).
    let warnings = Warnings()
    let c = try w.client(at: 7200, warnings: warnings)
    let e = try #require(refusal(c, "aa"))
    #expect(e.code == .integrity, "\(e.message)")
    #expect(e.message.contains("is revoked: backdoored release"), "\(e.message)")
    #expect(w.proxy.requests().first?.hasSuffix("/index.json (conditional)") == true, "\(w.proxy.requests())")
    #expect(w.proxy.requests().filter { $0.contains("/index.json") }.count == 1, "\(w.proxy.requests())")
    // Purged by the check, before the read was refused.
    #expect(!(try w.f.home().cache.contains(w.id("aa"))))
    #expect(warnings.lines.contains { $0.contains("is revoked: backdoored release; removed it from the cache") }, "\(warnings.lines)")
    // What is not revoked still reads, with no further request.
    try w.proxy.reset()
    #expect(try c.recipe("bb") == Data(w.recipes["bb"]!.utf8))
    #expect(try w.client(at: 7300).recipe("bb") == Data(w.recipes["bb"]!.utf8))
    #expect(try w.proxy.count() == 0, "\(w.proxy.requests())")
  }

  @Test func aRevocationCheckThatFindsNothingNewIsOneConditionalRequest() throws {
    let w = try world()
    let c = try w.client(at: 7200)
    #expect(try c.recipe("aa") == Data(w.recipes["aa"]!.utf8))
    #expect(w.proxy.requests().count == 1, "\(w.proxy.requests())")
    #expect(w.proxy.requests().first?.hasSuffix("/index.json (conditional)") == true, "\(w.proxy.requests())")
    // The 304 renewed the check: ten minutes later, no request.
    try w.proxy.reset()
    #expect(try w.client(at: 7800).recipe("aa") == Data(w.recipes["aa"]!.utf8))
    #expect(try w.proxy.count() == 0, "\(w.proxy.requests())")
  }

  @Test func noSourceAnsweringPastTheRevocationTTLServesWithOneWarningNamingTheAge() throws {
    let w = try world()
    try revokeAA(w)
    // The bucket unreachable: every connection closed.
    try w.proxy.failAfter(0)
    var warnings = Warnings()
    #expect(try w.client(at: 3 * 3600 + 120, warnings: warnings).recipe("aa") == Data(w.recipes["aa"]!.utf8))
    #expect(warnings.lines.count == 1, "\(warnings.lines)")
    #expect(
      warnings.lines.first?.hasPrefix("revocations last checked 3 hours ago; no source answered within 2 s") == true,
      "\(warnings.lines)")
    // A source that never answers is given up at the check's own limit.
    let hanging = try LoopbackServer { _ in .hang }
    defer { hanging.stop() }
    warnings = Warnings()
    let c = try w.client(at: 7200, sources: SourceChain(["http://127.0.0.1:\(hanging.port)/x"]), warnings: warnings)
    #expect(try c.recipe("aa") == Data(w.recipes["aa"]!.utf8))
    #expect(warnings.lines.count == 1, "\(warnings.lines)")
    #expect(warnings.lines.first?.contains("the time limit of 2 s ran out (the revocation check)") == true, "\(warnings.lines)")
    // Offline: no request, the same warning.
    warnings = Warnings()
    try w.proxy.reset()
    #expect(try w.client(at: 7200, sources: .off, warnings: warnings).recipe("aa") == Data(w.recipes["aa"]!.utf8))
    #expect(warnings.lines.count == 1, "\(warnings.lines)")
    #expect(warnings.lines.first?.hasPrefix("revocations last checked 2 hours ago; no source to ask") == true, "\(warnings.lines)")
    #expect(try w.proxy.count() == 0)
  }

  @Test func theCheckWalksTheChainPastASourceThatIsDown() throws {
    let w = try world()
    try revokeAA(w)
    let warnings = Warnings()
    let c = try w.client(at: 7200, sources: try SourceChain.parse("http://127.0.0.1:1/x|\(w.url)"), warnings: warnings)
    #expect(refusal(c, "aa")?.message.contains("is revoked: backdoored release") == true, "\(warnings.lines)")
    #expect(w.proxy.requests().filter { $0.contains("/index.json") }.count == 1, "\(w.proxy.requests())")
  }

  @Test func theRevocationTTLAndDeadlineAreReadLikeTheOtherTTLs() throws {
    #expect(try CachePolicy.fromEnvironment([:]).revocationTTL == 3600)
    #expect(try CachePolicy.fromEnvironment([:]).revocationDeadline == 2)
    #expect(try CachePolicy.fromEnvironment(["TSUKU_REVOCATION_TTL": "15m"]).revocationTTL == 900)
    #expect(try CachePolicy.fromEnvironment(["TSUKU_REVOCATION_DEADLINE": "0.5s"]).revocationDeadline == 0.5)
    for bad in ["30s", "2d", "soon"] {
      #expect(throws: TsukuError.self) { try CachePolicy.fromEnvironment(["TSUKU_REVOCATION_TTL": bad]) }
    }
    #expect(throws: TsukuError.self) { try CachePolicy.fromEnvironment(["TSUKU_REVOCATION_DEADLINE": "5m"]) }
  }
}
