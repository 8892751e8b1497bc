import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The source chain rules and the cache policy, with real stores and scripted faults.
@Suite struct PolicyTests {
  let day: TimeInterval = 86400

  func client(_ w: World, _ chain: String, at t: Date? = nil, stores: [String: any ObjectStore] = [:], force: Bool = false,
              policy: CachePolicy = CachePolicy(), warnings: WarningSink? = nil) throws -> Client {
    let c = Client(
      home: try w.f.home(), chain: try SourceChain.parse(chain), policy: policy, now: t ?? w.f.now, force: force,
      warn: { warnings?.add($0) })
    for (url, s) in stores { c.register(s, as: url) }
    return c
  }

  @Test func chainParsesLikeGoproxy() throws {
    let c = try SourceChain.parse("a, b|c")
    #expect(c.entries == [.init(url: "a"), .init(url: "b", anyError: true), .init(url: "c")])
    #expect(c.description == "a,b|c")
    #expect(try SourceChain.parse("off").isEmpty)
    #expect(throws: TsukuError.self) { try SourceChain.parse("a,,b") }
    #expect(throws: TsukuError.self) { try SourceChain.parse("a|") }
  }

  @Test func afterCommaTheNextSourceIsTriedOnlyWhenThisOneLacksIt() throws {
    let w = try World()
    // 404 -> next.
    let absent = FaultyStore(.notFound)
    #expect(try client(w, "absent,\(w.url)", stores: ["absent": absent]).updateRegistry().index_version == 1)
    // Refused -> stop, exit 5, the next one is never asked.
    let down = FaultyStore(.unavailable)
    let good = FaultyStore(.none, wrapping: w.store)
    let e = #expect(throws: TsukuError.self) { try client(w, "down,good", stores: ["down": down, "good": good]).updateRegistry() }
    #expect(e?.code == .unavailable)
    #expect(good.calls == 0)
  }

  @Test func afterPipeTheNextSourceIsTriedOnAnyFailure() throws {
    let w = try World()
    let down = FaultyStore(.unavailable)
    #expect(try client(w, "down|\(w.url)", stores: ["down": down]).updateRegistry().index_version == 1)
    #expect(down.calls == 1)
  }

  @Test func badBytesMoveOnWhateverTheSeparatorAndTheSourceIsSkippedAfterwards() throws {
    let w = try World()
    let liar = FaultyStore(.corrupt, wrapping: w.store)
    let sink = WarningSink()
    let c = try client(w, "liar,\(w.url)", stores: ["liar": liar], warnings: sink)
    #expect(try c.updateRegistry().source == w.url)
    #expect(sink.text.contains("source 'liar' failed verification and is skipped"))
    let before = liar.calls
    try w.cache.remove([w.recipeID("jq")])
    _ = try c.recipe("jq")  // fetched again: not from the liar
    #expect(liar.calls == before)
  }

  @Test func staleButValidlySignedMirrorNeverWinsOverTheNewestTrusted() throws {
    let w = try World()
    let old = try #require(try w.store.readDocument(.index, maxSize: 1 << 16))
    let mirror = MemoryStore()
    try mirror.apply(StoreChange(objects: try w.store.list().map { try w.store.get($0, maxSize: 1 << 20) }, documents: [(.root(1), w.f.root.bytes), (.index, old)]))
    try w.f.publish(w.input, to: w.store, at: w.later(10))
    _ = try client(w, w.url, at: w.later(20)).updateRegistry()  // trusts version 2
    let r = try client(w, "mirror,\(w.url)", at: w.later(30), stores: ["mirror": mirror]).updateRegistry()
    #expect(r.source == w.url)
    #expect(r.index_version == 2)
  }

  @Test func freshCacheIsServedWithoutAskingAnySource() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    let counting = FaultyStore(.none, wrapping: w.store)
    // Half an hour on: within the TTL and the revocation TTL (1h), past which one request is due.
    let c = try client(w, "counting", at: w.later(1800), stores: ["counting": counting])
    #expect(try c.recipe("fzf") == Data(RegistryFixture.recipe("fzf").utf8))
    #expect(counting.calls == 0)
    // --force asks anyway.
    let forced = try client(w, "counting", at: w.later(3600), stores: ["counting": counting], force: true)
    _ = try forced.recipe("fzf")
    #expect(counting.calls > 0)
  }

  @Test func staleCacheIsServedWithAWarningThatNamesTheRecipeAndItsAge() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    let sink = WarningSink()
    let c = try client(w, "down", at: w.later(2 * day + 60), stores: ["down": FaultyStore(.unavailable)], warnings: sink)
    #expect(try c.recipe("fzf") == Data(RegistryFixture.recipe("fzf").utf8))
    #expect(sink.lines == ["using cached recipe 'fzf' (last updated 2 days ago); run 'tsuku update-registry' when online"])
  }

  @Test func pastMaxStaleTheCacheIsAnErrorThatSaysHowStaleAndWhy() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    let c = try client(w, "down", at: w.later(9 * day), stores: ["down": FaultyStore(.unavailable)])
    let e = #expect(throws: TsukuError.self) { try c.recipe("fzf") }
    #expect(e?.code == .unavailable)
    #expect(e?.message == "cached registry is 9 days old, more than the 8 days allowed (TTL 1 day + max stale 7 days), and no source is reachable")
    #expect(e?.details.first?.contains("connection refused") == true)
  }

  @Test func cachedIndexThatExpiredWhileOfflineIsServedWithAWarning() throws {
    let w = try World()
    try w.f.publish(w.input, to: w.store, at: w.later(1), expiresDays: 1)
    _ = try client(w, w.url, at: w.later(2)).updateRegistry()
    let sink = WarningSink()
    let c = try client(w, "down", at: w.later(3 * day), stores: ["down": FaultyStore(.unavailable)], warnings: sink)
    #expect(try c.recipe("jq") == Data(RegistryFixture.recipe("jq").utf8))
    #expect(sink.text.contains("using cached recipe 'jq' (last updated 2 days ago)"))
  }

  @Test func noCacheAndNoSourceNamesTheRecipeAndEachSourceTried() throws {
    let w = try World()
    let c = try client(w, "down|gone", stores: ["down": FaultyStore(.unavailable), "gone": FaultyStore(.unavailable)])
    let e = #expect(throws: TsukuError.self) { try c.recipe("fzf") }
    #expect(e?.code == .unavailable)
    #expect(e?.message == "no source reachable and no cached copy of 'fzf'")
    #expect(e?.details.contains { $0.hasPrefix("down: ") } == true)
    #expect(e?.details.contains { $0.hasPrefix("gone: ") } == true)
  }

  @Test func dryRunSaysWhatWouldChangeAndWritesNothing() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    let input = try w.f.writeInput(
      "v2", recipes: ["fzf": RegistryFixture.recipe("fzf", description: "new"), "bat": RegistryFixture.recipe("bat")])
    try w.f.publish(input, to: w.store, at: w.later(5))
    let index = try w.cache.readDocument(.index, maxSize: 1 << 16)
    let r = try client(w, w.url, at: w.later(6)).updateRegistry(dryRun: true)
    #expect(r.added == ["bat"])
    #expect(r.changed == ["fzf"])
    #expect(r.removed == ["jq"])
    #expect(try w.cache.readDocument(.index, maxSize: 1 << 16) == index)
  }

  @Test func cachedIndexOlderThanTheNewestSeenIsSaidOnce() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    let home = try w.f.home()
    var (root, state) = try #require(try home.loadTrust())
    state.index_version = 7
    try home.saveTrust(root: root, state: state)
    root = try #require(try home.loadTrust()).0
    let sink = WarningSink()
    let c = try client(w, "down", at: w.later(60), stores: ["down": FaultyStore(.unavailable)], warnings: sink)
    _ = try c.recipe("fzf")
    _ = try c.recipe("jq")
    #expect(sink.lines == ["the cached index (version 1) is older than version 7 seen before; run 'tsuku update-registry'"])
  }

  @Test func lruEvictionKeepsTheCriticalSetAndTheIndex() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    let pad = String(repeating: "# padding\n", count: 40)
    var recipes = [String: String]()
    for n in ["aa", "bb", "cc", "dd", "ee", "ff"] { recipes[n] = RegistryFixture.recipe(n) + pad }
    try f.publish(try f.writeInput(recipes: recipes, critical: ["zz": RegistryFixture.recipe("zz") + pad]), to: store)
    var policy = CachePolicy()
    policy.sizeLimit = 1 << 20
    let home = try f.home()
    _ = try Client(home: home, chain: SourceChain([store.root]), policy: policy, now: f.now).updateRegistry()
    // Read in order: aa oldest ... ff newest.
    for (i, n) in ["aa", "bb", "cc", "dd", "ee", "ff", "zz"].enumerated() {
      let c = Client(home: home, chain: .off, policy: policy, now: f.now.addingTimeInterval(Double(i + 1) * 60))
      _ = try c.command { try $0.recipe(n) }
    }
    let cache = home.cache
    let total = try cache.list().reduce(0) { $0 + (try cache.get($1, maxSize: 1 << 20)).count }
    policy.sizeLimit = total - 900  // room for all but about two recipes
    // A new index version (same recipes): the sync writes, then measures the cache.
    try f.publish(try f.writeInput("v2", recipes: recipes, critical: ["zz": RegistryFixture.recipe("zz") + pad]), to: store, at: f.now.addingTimeInterval(1800))
    let sink = WarningSink()
    let c = Client(home: home, chain: SourceChain([store.root]), policy: policy, now: f.now.addingTimeInterval(3600), force: true,
      warn: { sink.add($0) })
    _ = try c.updateRegistry()
    func cached(_ n: String) throws -> Bool { try home.cache.contains(SHA256.hash(Data(recipes[n, default: RegistryFixture.recipe(n) + pad].utf8))) }
    #expect(try !cached("aa"))
    #expect(try cached("ff"))
    #expect(try cached("zz"))  // critical: pinned though least... never evicted
    #expect(sink.text.contains("evicted"))
    #expect(try Client(home: home, chain: .off, policy: policy, now: f.now.addingTimeInterval(3700)).entries().count == 7)
  }

  @Test func cacheInfoCleanupAndClearKeepTrust() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    _ = try client(w, w.url).command { try $0.recipe("fzf") }
    let c = try client(w, "off", at: w.later(3600))
    let info = c.cacheInfo()
    #expect(info.entries > 3)
    #expect(info.hits >= 1)
    let old = try c.cleanup(maxAge: 60, dryRun: true)
    #expect(!old.isEmpty)
    #expect(old.count < info.entries)  // the pinned index blobs stay
    #expect(try w.cache.list().count == info.entries)
    try c.clear(trust: false)
    #expect(!FileManager.default.fileExists(atPath: w.cache.root))
    #expect(try w.f.home().loadTrust()?.1.index_version == 1)
  }

  @Test func criticalRecipesAreServedFromTheBinaryWithNoHomeAndNoSource() throws {
    let tmp = try TemporaryDirectory()
    let c = Client(home: Home(path: tmp.file("empty")), chain: .off, now: Date())
    let zlib = try c.recipe("zlib")
    #expect(zlib == FileManager.default.contents(atPath: checkout + "/registry-index/source/embedded/zlib.toml"))
    let e = #expect(throws: TsukuError.self) { try c.recipe("fzf") }
    #expect(e?.code == .unavailable)
    #expect(EmbeddedSet.entries.count == 19)
  }

  @Test func aRevokedCriticalRecipeIsRefusedEvenFromTheBinary() throws {
    // A copy of the sample registry (whose root is the one built in), with cmake revoked.
    let tmp = try TemporaryDirectory()
    try FileManager.default.copyItem(atPath: checkout + "/registry-index/store", toPath: tmp.file("store"))
    let keyPath = tmp.file("revocation.key")
    try FileManager.default.copyItem(atPath: checkout + "/registry-index/keys/TEST-ONLY-revocation.key", toPath: keyPath)
    chmod(keyPath, 0o600)
    let store = DirectoryStore(path: tmp.file("store"))
    let cmake = try #require(EmbeddedSet.entry("cmake"))
    try Maintainer.revoke(
      [.hash(cmake.recipe.sha256)], reason: "test revocation", keys: [try KeyFile.readPrivate(keyPath)], in: store,
      expiresDays: 30, now: Date())
    let home = Home(path: tmp.file("home"))
    _ = try Client(home: home, chain: SourceChain([store.root]), now: Date()).updateRegistry()
    // Months later, offline: no index is usable any more, and the binary holds cmake...
    let later = Date().addingTimeInterval(90 * day)
    let e = #expect(throws: TsukuError.self) { try Client(home: home, chain: .off, now: later).recipe("cmake") }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("revoked: test revocation") == true)
    // ...while an unrevoked critical recipe is still served from it.
    #expect(try Client(home: home, chain: .off, now: later).recipe("zlib").count > 0)
  }

  @Test func theBuiltInSetIsNotServedToAHomeThatTrustsAnotherRegistry() throws {
    let w = try World()
    let e = #expect(throws: TsukuError.self) { try Client(home: try w.f.home(), chain: .off, now: w.f.now).recipe("cmake") }
    #expect(e?.code == .unavailable)
  }

  @Test func aCorruptCachedIndexIsRepairedFromTheSource() throws {
    let w = try World()
    _ = try client(w, w.url).updateRegistry()
    let path = w.cache.root + "/index.json"
    var bytes = try #require(FileManager.default.contents(atPath: path))
    bytes[bytes.startIndex + 40] ^= 1
    try bytes.write(to: URL(fileURLWithPath: path))
    let r = try client(w, w.url, at: w.later(60), force: true).updateRegistry()
    #expect(!r.up_to_date || r.index_version == 1)
    #expect(try client(w, "off", at: w.later(61)).recipe("fzf") == Data(RegistryFixture.recipe("fzf").utf8))
  }

  @Test func policyEnvironmentIsValidated() throws {
    #expect(try CachePolicy.fromEnvironment(["TSUKU_RECIPE_CACHE_TTL": "30m"]).ttl == 1800)
    #expect(try CachePolicy.fromEnvironment(["TSUKU_RECIPE_CACHE_SIZE_LIMIT": "64MB"]).sizeLimit == 64 << 20)
    let e = #expect(throws: TsukuError.self) { try CachePolicy.fromEnvironment(["TSUKU_RECIPE_CACHE_TTL": "1m"]) }
    #expect(e?.message == "invalid TSUKU_RECIPE_CACHE_TTL '1m': expected a duration from 5m to 7d, e.g. 24h")
    #expect(throws: TsukuError.self) { try CachePolicy.fromEnvironment(["TSUKU_RECIPE_CACHE_SIZE_LIMIT": "12GB"]) }
  }
}

/// Collects warnings.
final class WarningSink: @unchecked Sendable {
  private let lock = NSLock()
  private var list = [String]()
  func add(_ s: String) { lock.withLock { list.append(s) } }
  var lines: [String] { lock.withLock { list } }
  var text: String { lines.joined(separator: "\n") }
}
