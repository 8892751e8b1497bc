import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

@Suite struct PackTests {
  @Test func packRoundTripsAndFindsEveryBlob() throws {
    let blobs = (0..<50).map { Data("blob \($0) ".utf8) + Data(repeating: UInt8($0), count: $0) } + [Data()]
    let pack = try Pack(Pack.build(blobs + blobs))
    #expect(pack.entries.count == 51)
    for b in blobs {
      let e = try #require(pack.entry(SHA256.hash(b)))
      #expect(try pack.blob(e) == b)
    }
    #expect(pack.entry(SHA256.hash("absent")) == nil)
  }

  @Test(arguments: ["short", "bad magic", "count too large", "offset outside", "unsorted"])
  func malformedPackIsRefusedNeverTrapped(kind: String) throws {
    var b = [UInt8](Pack.build([Data("a".utf8), Data("bb".utf8)]))
    switch kind {
    case "short": b = Array(b.prefix(10))
    case "bad magic": b[0] = 0x58
    case "count too large": b[8] = 0xff
    case "offset outside": b[12 + 32 + 7] = 0xff
    default:
      let first = Array(b[12..<56])
      b.replaceSubrange(12..<56, with: b[56..<100])
      b.replaceSubrange(56..<100, with: first)
    }
    let e = #expect(throws: TsukuError.self) { try Pack(Data(b)) }
    #expect(e?.code == .integrity)
  }

  @Test func flippedByteInsideAPackedBlobIsRefused() throws {
    var b = [UInt8](Pack.build([Data("hello".utf8)]))
    b[b.count - 1] ^= 1
    let pack = try Pack(Data(b))
    #expect(throws: TsukuError.self) { try pack.blob(pack.entries[0]) }
  }

  @Test func coldSyncTakesThePacksAndAWarmOneOnlyTheChanges() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    var recipes = [String: String]()
    for i in 0..<60 { recipes["tool\(i)"] = RegistryFixture.recipe("tool\(i)") }
    try Publisher.publish(
      try f.writeInput("v1", recipes: recipes), keys: [f.indexKey], revocationKeys: [f.revocationKey], to: [store],
      expiresDays: 30, now: f.now, packs: true)
    let counting = FaultyStore(.none, wrapping: store)
    let c = Client(home: try f.home(), chain: SourceChain(["src"]), now: f.now)
    c.register(counting, as: "src")
    let r = try c.updateRegistry()
    #expect(r.recipes == 60)
    // index.json, the tree, one pack: three reads for 60 recipes and the index's shards.
    #expect(counting.calls <= 4)
    #expect(try Client(home: try f.home(), chain: .off, now: f.now).recipe("tool7") == Data(RegistryFixture.recipe("tool7").utf8))

    // One recipe changes: the publish adds a small pack; the warm client fetches just the
    // changed shard and recipe.
    recipes["tool7"] = RegistryFixture.recipe("tool7", description: "changed")
    let p2 = try Publisher.publish(
      try f.writeInput("v2", recipes: recipes), keys: [f.indexKey], to: [store], expiresDays: 30,
      now: f.now.addingTimeInterval(60), packs: true)
    #expect(p2.targets[0].report.objectsWritten <= 5)
    let counting2 = FaultyStore(.none, wrapping: store)
    let c2 = Client(home: try f.home(), chain: SourceChain(["src"]), now: f.now.addingTimeInterval(120))
    c2.register(counting2, as: "src")
    let r2 = try c2.updateRegistry()
    #expect(r2.changed == ["tool7"])
    #expect(r2.fetched_blobs <= 3)
    #expect(r2.fetched_bytes < 4096)
  }

  /// Above 8,192 recipes the tree lists subtrees, and a change spread over the registry makes
  /// every subtree new while most shards stay cached: the warm client must still fetch only
  /// the changes, not take the packs as if it were cold.
  @Test func aWarmSyncOfATreeWithSubtreesFetchesTheChangesNotThePacks() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    var recipes = [String: String]()
    for i in 0..<8_300 { recipes["t\(i)"] = RegistryFixture.recipe("t\(i)") }
    try Publisher.publish(
      try f.writeInput("v1", recipes: recipes), keys: [f.indexKey], revocationKeys: [f.revocationKey], to: [store],
      expiresDays: 30, now: f.now, packs: true)
    let c = Client(home: try f.home(), chain: SourceChain(["src"]), now: f.now)
    c.register(store, as: "src")
    let cold = try c.updateRegistry()
    #expect(cold.recipes == 8_300)
    let index = try IndexFile.parse(try #require(try store.readDocument(.index, maxSize: 1 << 20)), what: "i")
    let payload = try IndexPayload.parse(try #require(index.index.payloadBytes), what: "p")
    let tree = try IndexTree.parse(try store.get(payload.tree.sha256, maxSize: payload.tree.size), what: "t")
    #expect(tree.subtrees?.count == 16)

    // 1% changed, one in a hundred names: every subtree is touched.
    for i in stride(from: 0, to: 8_300, by: 100) { recipes["t\(i)"] = RegistryFixture.recipe("t\(i)", description: "bumped") }
    try Publisher.publish(
      try f.writeInput("v2", recipes: recipes), keys: [f.indexKey], to: [store], expiresDays: 30,
      now: f.now.addingTimeInterval(60), packs: true)
    let c2 = Client(home: try f.home(), chain: SourceChain(["src"]), now: f.now.addingTimeInterval(120))
    c2.register(store, as: "src")
    let warm = try c2.updateRegistry()
    #expect(warm.changed.count == 83)
    // The 83 recipes, their shards, the 16 subtrees and the tree: no pack.
    #expect(warm.fetched_objects <= 83 + 83 + 16 + 1)
    #expect(warm.fetched_bytes * 10 < cold.fetched_bytes)
  }

  @Test func aTamperedCachedPackIsRefusedNotTrapped() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    try Publisher.publish(
      try f.writeInput(recipes: ["aa": RegistryFixture.recipe("aa"), "bb": RegistryFixture.recipe("bb")]), keys: [f.indexKey],
      to: [store], expiresDays: 30, now: f.now, packs: true)
    _ = try Client(home: try f.home(), chain: SourceChain([store.root]), now: f.now).updateRegistry()
    let packs = f.dir.file("home/cache/packs")
    let name = try #require(try FileManager.default.contentsOfDirectory(atPath: packs).first { $0.hasSuffix(".pack") })
    var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: packs + "/" + name)))
    let count = Int(b[11])
    for i in 0..<count { for k in 0..<8 { b[12 + i * 44 + 32 + k] = k == 0 ? 0x7f : 0xff } }
    try Data(b).write(to: URL(fileURLWithPath: packs + "/" + name))
    // Offline: the blob cannot be read from the damaged pack: refused or missing, never a trap.
    let e = #expect(throws: TsukuError.self) { try Client(home: try f.home(), chain: .off, now: f.now).recipe("aa") }
    #expect(e != nil)
    // Online: fetched again from the source.
    #expect(try Client(home: try f.home(), chain: SourceChain([store.root]), now: f.now).recipe("aa") == Data(RegistryFixture.recipe("aa").utf8))
  }

  @Test func noOpSyncIsOneConditionalRead() throws {
    let w = try World()
    _ = try w.client().updateRegistry()
    let counting = FaultyStore(.none, wrapping: w.store)
    let c = Client(home: try w.f.home(), chain: SourceChain(["src"]), now: w.later(60), force: true)
    c.register(counting, as: "src")
    let r = try c.updateRegistry()
    #expect(r.up_to_date)
    #expect(counting.calls == 1)
  }
}
