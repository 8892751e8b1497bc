import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// A name the cached index lacks: within the negative TTL the cached answer stands with no
/// request; past it (still inside the cache TTL) one conditional read of index.json says
/// whether it was published since. Against SeaweedFS, the clock injected through `Client.now`,
/// requests counted by a proxy in front of the server.
@Suite(.serialized) struct NegativeTTLTests {
  struct World {
    let f: RegistryFixture
    let proxy: CountingProxy
    let store: S3Store
    let url: String
    var recipes: [String: String]
  }

  /// A bucket holding a registry of aa and bb, a client that synced it at `f.now`, and z3
  /// published a minute later.
  func world() throws -> World {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let bucket = try server.makeBucket(prefix: "neg")
    let store = server.store(bucket: bucket, prefix: "reg")
    let f = try RegistryFixture()
    try f.initialize(store)
    var recipes = ["aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb")]
    try f.publish(try f.writeInput("v1", recipes: recipes), to: store)
    let proxy = try CountingProxy(upstream: server.endpoint)
    let url = proxy.endpoint + "/" + bucket + "/reg"
    let synced = try f.client([url]).updateRegistry()
    #expect(synced.index_version == 1)
    recipes["z3"] = RegistryFixture.recipe("z3", description: "published after the sync")
    try f.publish(try f.writeInput("v2", recipes: recipes), to: store, at: f.now.addingTimeInterval(60))
    try proxy.reset()
    return World(f: f, proxy: proxy, store: store, url: url, recipes: recipes)
  }

  func notFound(_ c: Client, _ name: String) -> Bool {
    do {
      _ = try c.recipe(name)
      return false
    } catch let e as TsukuError {
      return e.code == .notFound
    } catch { return false }
  }

  @Test func aRecipePublishedAfterTheLastSyncIsShownAfterOneConditionalRequest() throws {
    let w = try world()
    // Two minutes after the sync: inside the negative TTL, the cached "not found", no request.
    #expect(notFound(try w.f.client([w.url], at: w.f.now.addingTimeInterval(120)), "z3"))
    #expect(try w.proxy.count() == 0)
    // Ten minutes after: past the negative TTL (5m), well inside the cache TTL (24h).
    let later = w.f.now.addingTimeInterval(600)
    let c = try w.f.client([w.url], at: later)
    #expect(try c.recipe("z3") == Data(w.recipes["z3"]!.utf8))
    let indexReads = w.proxy.requests().filter { $0.contains("/index.json") }
    #expect(indexReads.count == 1, "\(w.proxy.requests())")
    #expect(indexReads.first?.hasSuffix("(conditional)") == true, "\(indexReads)")
    #expect(try c.entries().map(\.name) == ["aa", "bb", "z3"])
    // A second miss within the negative TTL of that check makes no request.
    try w.proxy.reset()
    #expect(notFound(try w.f.client([w.url], at: later.addingTimeInterval(60)), "nosuch"))
    #expect(try w.proxy.count() == 0)
    // Past it again, an unchanged index costs exactly one request (answered 304).
    #expect(notFound(try w.f.client([w.url], at: later.addingTimeInterval(400)), "nosuch"))
    #expect(w.proxy.requests().count == 1, "\(w.proxy.requests())")
    #expect(w.proxy.requests().first?.hasSuffix("/index.json (conditional)") == true)
  }

  @Test func aSourceThatDoesNotAnswerLeavesTheCachedNotFoundWithOneWarning() throws {
    let w = try world()
    var warnings = [String]()
    let home = try w.f.home()
    let c = Client(
      home: home, chain: SourceChain(["http://127.0.0.1:1/x"]), now: w.f.now.addingTimeInterval(600),
      warn: { warnings.append($0) })
    #expect(notFound(c, "z3"))
    #expect(warnings.count == 1, "\(warnings)")
    #expect(
      warnings.first?.hasPrefix(
        "'z3' is not in the cached index (version 1, confirmed 10 minutes ago) and 'http://127.0.0.1:1/x' could not be asked for a newer one"
      ) == true, "\(warnings)")
    // What is cached still reads.
    #expect(try c.recipe("aa") == Data(w.recipes["aa"]!.utf8))
  }

  @Test func aSourceThatHangsIsGivenUpAtTheChecksOwnLimitNotTheCommands() throws {
    let w = try world()
    let hanging = try LoopbackServer { _ in .hang }
    defer { hanging.stop() }
    var warnings = [String]()
    let c = Client(
      home: try w.f.home(), chain: SourceChain(["http://127.0.0.1:\(hanging.port)/x"]),
      now: w.f.now.addingTimeInterval(600),
      warn: { warnings.append($0) })
    #expect(notFound(c, "z3"))
    #expect(warnings.count == 1, "\(warnings)")
    #expect(
      warnings.first?.contains("the time limit of 2 s ran out (the check for a name published since)") == true,
      "\(warnings)")
  }

  @Test func theNegativeTTLIsReadLikeTheOtherTTLs() throws {
    #expect(try CachePolicy.fromEnvironment([:]).negativeTTL == 300)
    #expect(try CachePolicy.fromEnvironment(["TSUKU_RECIPE_NEGATIVE_TTL": "0"]).negativeTTL == 0)
    #expect(try CachePolicy.fromEnvironment(["TSUKU_RECIPE_NEGATIVE_TTL": "90s"]).negativeTTL == 90)
    #expect(throws: TsukuError.self) { try CachePolicy.fromEnvironment(["TSUKU_RECIPE_NEGATIVE_TTL": "2d"]) }
  }
}
