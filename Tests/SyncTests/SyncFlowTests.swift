import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The checkout this test was built from.
let checkout: String = {
  var u = URL(fileURLWithPath: #filePath)
  for _ in 0..<3 { u.deleteLastPathComponent() }
  return u.path
}()

let sampleInput = PublishInput(
  recipes: checkout + "/registry-index/source/recipes", critical: checkout + "/registry-index/source/embedded",
  golden: checkout + "/registry-index/source/golden")

/// Publish, sync and read, end to end through the public API.
@Suite struct SyncFlowTests {
  @Test(arguments: ["dir", "git"])
  func publishThenSyncThenShowReturnsIdenticalBytesForEverySampleRecipe(kind: String) throws {
    let f = try RegistryFixture()
    let url: String
    if kind == "git" {
      try makeGitRepository(at: f.dir.file("repo"))
      url = "git+file://\(f.dir.file("repo"))?dir=registry"
    } else {
      url = "file://" + f.dir.file("store")
    }
    try f.initialize(StoreURL.open(url))
    let result = try f.publish(sampleInput, to: StoreURL.open(url))
    #expect(result.scan.criticalCount == 19)
    #expect(result.scan.entries.count >= 119)
    #expect(result.scan.skipped.contains { $0.hasSuffix("README.md") })

    let client = try f.client([url])
    let sync = try client.updateRegistry()
    #expect(sync.index_version == 1)
    #expect(sync.recipes == result.scan.entries.count)
    // Every recipe, read from the cache only, equals its file.
    let offline = try f.client([])
    for dir in [sampleInput.recipes!, sampleInput.critical!] {
      let files = FileManager.default.enumerator(atPath: dir)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".toml") }
      for rel in files {
        let name = String((rel as NSString).lastPathComponent.dropLast(5))
        let want = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel))
        #expect(try offline.recipe(name) == want, "recipe \(name)")
      }
    }
    // And a golden file, by platform, newest version.
    let plan = try offline.plan("cmake", platform: "linux-debian-amd64", version: nil)
    let want = try Data(contentsOf: URL(fileURLWithPath: sampleInput.golden! + "/embedded/cmake/v4.2.3-linux-debian-amd64.json"))
    #expect(plan == want)
  }

  @Test func hyphenatedGoldenVersionsAreIndexedUnderTheRightPlatform() throws {
    let scan = try Publisher.scan(sampleInput)
    let ca = try #require(scan.entries.first { $0.name == "ca-certificates" })
    #expect(Set(ca.golden.map(\.platform)) == ["darwin-amd64", "darwin-arm64", "linux-amd64"])
    #expect(ca.golden.allSatisfy { $0.version == "2025-12-02" })
  }

  @Test func secondSyncFetchesOnlyWhatChanged() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    var recipes = ["aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb")]
    try f.publish(try f.writeInput("v1", recipes: recipes), to: store)
    let client = try f.client([store.root])
    #expect(try client.updateRegistry().fetched_blobs > 2)
    #expect(try client.updateRegistry().up_to_date)
    recipes["bb"] = RegistryFixture.recipe("bb", description: "changed")
    try f.publish(try f.writeInput("v2", recipes: recipes), to: store, at: f.now.addingTimeInterval(60))
    let r = try f.client([store.root]).updateRegistry()
    #expect(r.index_version == 2)
    // The tree, one or two shards, and the changed recipe; never the unchanged one.
    #expect(r.fetched_blobs <= 4)
    #expect(try f.client([]).recipe("bb") == Data(RegistryFixture.recipe("bb", description: "changed").utf8))
  }

  @Test func tamperedBlobInSourceIsRefusedAndNeverEntersTheCache() throws {
    let f = try RegistryFixture()
    let store = MemoryStore()
    try f.initialize(store)
    try f.publish(try f.writeInput(recipes: ["fzf": RegistryFixture.recipe("fzf")]), to: store)
    let id = SHA256.hash(Data(RegistryFixture.recipe("fzf").utf8))
    var bytes = [UInt8](RegistryFixture.recipe("fzf").utf8)
    bytes[10] ^= 1
    store.tamper(id, with: Data(bytes))
    let client = try f.client(["memory-source"])
    let e = #expect(throws: TsukuError.self) { try Client.syncForTest(client, store) }
    #expect(e?.code == .integrity)
    #expect(try !f.home().cache.contains(id))
    #expect(try f.home().cache.readDocument(.index, maxSize: 1 << 20) == nil)
  }

  @Test func tamperedCachedBlobIsDetectedByShowAndByVerify() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    try f.publish(try f.writeInput(recipes: ["fzf": RegistryFixture.recipe("fzf")]), to: store)
    _ = try f.client([store.root]).updateRegistry()
    let id = SHA256.hash(Data(RegistryFixture.recipe("fzf").utf8))
    let cacheDir = f.dir.file("home/cache")
    #expect(try tamperCachedBlob(cacheDir: cacheDir, id: id))
    // Offline: show refuses, and removes the bad copy.
    let e = #expect(throws: TsukuError.self) { try f.client([]).recipe("fzf") }
    #expect(e?.code == .integrity)
    #expect(try !DirectoryStore(path: cacheDir).contains(id))
    // Online: show heals from the source.
    #expect(try f.client([store.root]).recipe("fzf") == Data(RegistryFixture.recipe("fzf").utf8))
    // verify finds and removes it too.
    #expect(try tamperCachedBlob(cacheDir: cacheDir, id: id))
    let report = try f.client([]).verifyCache()
    #expect(report.corrupt == [id.hex])
    #expect(report.index_ok)
  }

  @Test func indexOlderThanTrustedIsRefusedAtSync() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    let input = try f.writeInput(recipes: ["aa": RegistryFixture.recipe("aa")])
    try f.publish(input, to: store)
    let old = try #require(try store.readDocument(.index, maxSize: 1 << 20))
    try f.publish(input, to: store, at: f.now.addingTimeInterval(10))
    #expect(try f.client([store.root]).updateRegistry().index_version == 2)
    // A mirror replays version 1.
    let mirror = DirectoryStore(path: f.dir.file("mirror"))
    try mirror.apply(StoreChange(objects: try store.list().map { try store.get($0, maxSize: 1 << 20) }, documents: [(.root(1), f.root.bytes), (.index, old)]))
    let e = #expect(throws: TsukuError.self) { try f.client([mirror.root]).updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("rollback refused") == true)
    #expect(try Home(path: f.dir.file("home")).loadTrust()?.1.index_version == 2)
  }

  @Test(arguments: ["../../etc/passwd", "a\u{0}b", "/etc/passwd", "A", "", ".hidden", "x/../y"])
  func traversalOrOddRecipeNameIsRejectedAndTouchesNothing(name: String) throws {
    let f = try RegistryFixture()
    let client = try f.client([f.dir.file("nowhere")])
    let e = #expect(throws: TsukuError.self) { try client.recipe(name) }
    #expect(e?.code == .usage)
    #expect(!FileManager.default.fileExists(atPath: f.dir.file("home/cache")))
  }

  @Test func publishOfABrokenRecipeNamesTheFileAndWritesNothing() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    let broken = RegistryFixture.recipe("bad").replacingOccurrences(of: "[verify]\ncommand = \"bad --version\"\n", with: "")
    let input = try f.writeInput(recipes: ["good": RegistryFixture.recipe("good"), "bad": broken])
    let e = #expect(throws: TsukuError.self) { try f.publish(input, to: store) }
    #expect(e?.code == .usage)
    #expect(e?.message.contains("bad.toml") == true)
    #expect(try store.list().isEmpty)
    #expect(try store.readDocument(.index, maxSize: 1 << 20) == nil)
  }

  @Test func publishWithAKeyThatIsNotAnIndexKeyIsRefused() throws {
    let f = try RegistryFixture()
    let store = MemoryStore()
    try f.initialize(store)
    let e = #expect(throws: TsukuError.self) {
      try Publisher.publish(
        try f.writeInput(recipes: ["aa": RegistryFixture.recipe("aa")]), keys: [f.rootKey], to: [store], expiresDays: 30, now: f.now)
    }
    #expect(e?.message.contains("is not an index key") == true)
    #expect(try store.list().isEmpty)
  }

  @Test func publisherThatLostARaceFindsOut() throws {
    let f = try RegistryFixture()
    let store = MemoryStore()
    try f.initialize(store)
    try f.publish(try f.writeInput(recipes: ["aa": RegistryFixture.recipe("aa")]), to: store)
    let stale = StoreChange(documents: [(.index, Data("x".utf8))], precondition: .indexAbsent)
    let e = #expect(throws: TsukuError.self) { try store.apply(stale) }
    #expect(e?.code == .conflict)
  }

  @Test func versionOrderIsNumeric() {
    #expect(VersionOrder.less("1.9.2", "1.10.0"))
    #expect(VersionOrder.less("2025-11-30", "2025-12-02"))
    #expect(!VersionOrder.less("2.0", "1.99"))
  }
}

extension Client {
  /// Runs `body` as a command does, then writes what the client recorded (audit events, cache
  /// reads, metrics), whether `body` succeeded or failed.
  func command<T>(_ body: (Client) throws -> T) rethrows -> T {
    defer { flush() }
    return try body(self)
  }

  /// Syncs from an in-memory store by handing it to the client under a made-up URL.
  static func syncForTest(_ client: Client, _ store: MemoryStore) throws {
    client.register(store, as: "memory-source")
    _ = try client.updateRegistry()
  }
}
