import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A registry published four times, so older versions pin blobs the newer ones do not.
/// Version 1 has `old1`, 2 has `old2`, 3 and 4 share `keep`; every version has `fzf` (its
/// recipe text changes each time, so each version pins a recipe of its own).
struct RetentionWorld {
  let f: RegistryFixture
  let store: any ObjectStore

  /// Publishes versions 1...4 to `store`, dated `publishedAt` (git commits use it too).
  init(_ f: RegistryFixture, store: any ObjectStore, publishedAt: Date) throws {
    self.f = f
    self.store = store
    try f.initialize(store)
    for v in 1...4 {
      var recipes = ["fzf": RegistryFixture.recipe("fzf", description: "version \(v)")]
      if v <= 2 { recipes["old\(v)"] = RegistryFixture.recipe("old\(v)") }
      if v >= 3 { recipes["keep"] = RegistryFixture.recipe("keep") }
      try Publisher.publish(
        try f.writeInput("v\(v)", recipes: recipes, golden: v == 1 ? fullGolden("old1") : [:]), keys: [f.indexKey],
        revocationKeys: v == 1 ? [f.revocationKey] : [], to: [store], expiresDays: 30, now: publishedAt,
        commitTime: publishedAt, allowRemovals: true)
    }
  }

  /// What index version `v` pins (from its archive copy).
  func pins(_ v: Int) throws -> Set<ObjectID> {
    let bytes = try #require(try store.readDocument(.archivedIndex(v), maxSize: 65536))
    return Set(try IndexContents.load(try IndexContents.verify(bytes, store: store, what: "v\(v)"), from: [store]).pinned.keys)
  }

  func live() throws -> Set<ObjectID> { Set(try store.inventory(.live, dated: false).map(\.id)) }
  func quarantined() throws -> Set<ObjectID> { Set(try store.inventory(.quarantine, dated: false).map(\.id)) }
}

@Suite struct RetentionTests {
  @Test func publishArchivesEveryIndexVersionAndRevokeKeepsTheVersion() throws {
    let f = try RegistryFixture()
    let store = MemoryStore()
    try f.initialize(store)
    try f.publish(try f.writeInput("a", recipes: ["fzf": RegistryFixture.recipe("fzf")]), to: store)
    try f.publish(try f.writeInput("b", recipes: ["jq": RegistryFixture.recipe("jq")]), to: store)
    #expect(try store.readDocument(.archivedIndex(1), maxSize: 65536) != nil)
    #expect(try store.readDocument(.archivedIndex(2), maxSize: 65536) == store.readDocument(.index, maxSize: 65536))
    try Maintainer.resign(keys: [f.indexKey], in: store, expiresDays: 30, now: f.now)
    #expect(try store.readDocument(.archivedIndex(3), maxSize: 65536) == store.readDocument(.index, maxSize: 65536))
    try Maintainer.revoke([.hash(SHA256.hash("x"))], reason: "test", keys: [f.revocationKey], in: store, expiresDays: 30, now: f.now)
    // A revocation keeps index version 3: no archive copy of a version 4.
    #expect(try store.readDocument(.archivedIndex(4), maxSize: 65536) == nil)
    let archived = try IndexContents.verify(try #require(try store.readDocument(.archivedIndex(1), maxSize: 65536)), store: store, what: "v1")
    #expect(archived.index.version == 1)
  }

  @Test func gcOnGitQuarantinesThenDeletesOnALaterRun() throws {
    let f = try RegistryFixture()
    let repo = try makeGitRepository(at: f.dir.file("repo.git"), bare: true)
    let store = try GitStore(repository: repo, subdirectory: "store")
    let w = try RetentionWorld(f, store: store, publishedAt: Date().addingTimeInterval(-30 * 86400))
    let (p1, p2, p3, p4) = (try w.pins(1), try w.pins(2), try w.pins(3), try w.pins(4))
    let garbage = p1.union(p2).subtracting(p3).subtracting(p4)
    #expect(!garbage.isEmpty)
    #expect(try w.live().isSuperset(of: garbage))

    var r = try Retention.collect(store, options: GCOptions(keepIndexVersions: 2, minAge: 7 * 86400, now: Date()))
    #expect(r.kept_versions == [4, 3])
    #expect(r.quarantined.objects == garbage.count)
    #expect(r.deleted.objects == 0)
    #expect(r.referenced == p3.union(p4).count)
    let reopened = try GitStore(repository: repo, subdirectory: "store")
    #expect(try Set(reopened.inventory(.quarantine, dated: false).map(\.id)) == garbage)
    #expect(try Set(reopened.inventory(.live, dated: false).map(\.id)) == p3.union(p4))
    for id in p3.union(p4) { #expect(try reopened.contains(id)) }

    // Too early: the quarantine waits for min-age.
    r = try Retention.collect(reopened, options: GCOptions(keepIndexVersions: 2, minAge: 7 * 86400, now: Date().addingTimeInterval(86400)))
    #expect(r.deleted.objects == 0)
    #expect(r.quarantine_after.objects == garbage.count)

    // Eight days on: deleted, and the bytes freed are theirs.
    let sizes = try reopened.inventory(.quarantine, dated: false).reduce(0) { $0 + $1.size }
    r = try Retention.collect(
      try GitStore(repository: repo, subdirectory: "store"),
      options: GCOptions(keepIndexVersions: 2, minAge: 7 * 86400, now: Date().addingTimeInterval(8 * 86400)))
    #expect(r.deleted.objects == garbage.count)
    #expect(r.bytes_freed == sizes)
    #expect(r.quarantine_after.objects == 0)
    let last = try GitStore(repository: repo, subdirectory: "store")
    #expect(try last.inventory(.quarantine, dated: false).isEmpty)
    // History still has them: a client with the history window is served.
    last.enableHistory(days: 0, cacheDirectory: nil)
    for id in garbage { #expect(try last.contains(id)) }
    let log = try runGit(["log", "--format=%s", "main"], in: repo)
    #expect(log.contains("quarantine \(garbage.count) blobs"))
    #expect(log.contains("delete \(garbage.count) quarantined blobs"))
  }

  @Test func gcOnSeaweedFSQuarantinesThenDeletes() throws {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let store = server.store(bucket: try server.makeBucket(prefix: "gc"), prefix: "reg")
    let w = try RetentionWorld(try RegistryFixture(), store: store, publishedAt: Date())
    let garbage = try w.pins(1).union(try w.pins(2)).subtracting(try w.pins(3)).subtracting(try w.pins(4))
    let kept = try w.pins(3).union(try w.pins(4))

    // Everything was written just now: nothing is old enough.
    var r = try Retention.collect(store, options: GCOptions(keepIndexVersions: 2, minAge: 7 * 86400, now: Date()))
    #expect(r.quarantined.objects == 0)
    #expect(r.young.objects == garbage.count)

    r = try Retention.collect(store, options: GCOptions(keepIndexVersions: 2, minAge: 7 * 86400, now: Date().addingTimeInterval(8 * 86400)))
    #expect(r.quarantined.objects == garbage.count)
    #expect(try w.quarantined() == garbage)
    #expect(try w.live() == kept)
    for id in kept { #expect(try store.contains(id)) }

    r = try Retention.collect(store, options: GCOptions(keepIndexVersions: 2, minAge: 7 * 86400, now: Date().addingTimeInterval(16 * 86400)))
    #expect(r.deleted.objects == garbage.count)
    #expect(r.bytes_freed > 0)
    #expect(try w.quarantined().isEmpty)
    #expect(try w.live() == kept)
  }

  @Test func dryRunDeletesNothing() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    let w = try RetentionWorld(f, store: store, publishedAt: Date())
    // One real run puts version 1's blobs in the quarantine, so both phases have work.
    let first = try Retention.collect(store, options: GCOptions(keepIndexVersions: 3, minAge: 86400, now: Date().addingTimeInterval(2 * 86400)))
    #expect(first.quarantined.objects > 0)
    let (live, quarantined) = (try store.inventory(.live, dated: true), try store.inventory(.quarantine, dated: true))
    let r = try Retention.collect(
      store, options: GCOptions(keepIndexVersions: 2, minAge: 86400, dryRun: true, now: Date().addingTimeInterval(4 * 86400)))
    #expect(r.dry_run)
    #expect(r.deleted.objects == quarantined.count)
    #expect(r.quarantined.objects > 0)
    #expect(try store.inventory(.live, dated: true) == live)
    #expect(try store.inventory(.quarantine, dated: true) == quarantined)
    _ = w
  }

  /// Attack: a planted or stale quarantine, an extra old blob and a forged archive copy must
  /// never make gc remove a blob that a kept index version pins.
  @Test func attackGCNeverRemovesABlobAKeptIndexPins() throws {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("store"))
    let w = try RetentionWorld(f, store: store, publishedAt: Date())
    let kept = try w.pins(2).union(try w.pins(3)).union(try w.pins(4))
    // Someone (a bad earlier run, a mistake, an attacker with write access) moved pinned
    // blobs into the quarantine long ago: among them a shard and the revocation list.
    let v2 = try IndexContents.verify(try #require(try store.readDocument(.archivedIndex(2), maxSize: 65536)), store: store, what: "v2")
    let c2 = try IndexContents.load(v2, from: [store])
    let shard = try #require(c2.pinned.values.first { $0.role == .shard }).id
    let revocation = try #require(c2.pinned.values.first { $0.role == .revocationList }).id
    let recipe = try #require(c2.pinned.values.first { $0.recipe == "old2" }).id
    #expect(try store.move([shard, revocation, recipe], from: .live, to: .quarantine) == 3)
    let longAgo = Date().addingTimeInterval(-90 * 86400)
    for id in [shard, revocation, recipe] {
      #expect(setFileTime(store.root + "/" + ObjectArea.quarantine.path(id), longAgo))
    }
    for d in 1...3 {
      let r = try Retention.collect(
        store, options: GCOptions(keepIndexVersions: 3, minAge: 86400, now: Date().addingTimeInterval(Double(d) * 30 * 86400)))
      #expect(r.kept_versions == [4, 3, 2])
      if d == 1 { #expect(r.restored.objects == 3) }
      for id in kept { #expect(try store.get(id, maxSize: 1 << 20).count > 0, "pinned blob '\(id.hex)' was removed") }
    }
    #expect(try w.quarantined().isDisjoint(with: kept))

    // A forged archive copy (not signed by the index keys) stops gc before it changes anything.
    let liar = try SigningKey.generate()
    var forged = try IndexFile.parse(try #require(try store.readDocument(.archivedIndex(3), maxSize: 65536)), what: "v3")
    forged.index = try Envelope.sign(type: .index, payload: try #require(forged.index.payloadBytes), keys: [liar])
    try store.apply(StoreChange(documents: [(.archivedIndex(3), forged.bytes)]))
    let before = (try store.inventory(.live, dated: false), try store.inventory(.quarantine, dated: false))
    do {
      _ = try Retention.collect(store, options: GCOptions(keepIndexVersions: 3, minAge: 0, now: Date().addingTimeInterval(400 * 86400)))
      Issue.record("gc ran with a forged archive copy")
    } catch let e as TsukuError {
      #expect(e.code == .integrity)
    }
    #expect(try store.inventory(.live, dated: false) == before.0)
    #expect(try store.inventory(.quarantine, dated: false) == before.1)
  }

  @Test func aPublishDuringGCKeepsTheBlobsItReuses() throws {
    let f = try RegistryFixture()
    let inner = DirectoryStore(path: f.dir.file("store"))
    let w = try RetentionWorld(f, store: inner, publishedAt: Date())
    // Version 5 brings 'old1' back (its blobs are still in the store, so the publish writes
    // none of them) while gc is between its listing and its quarantine step.
    let racing = PublishDuringListing(inner) {
      try Publisher.publish(
        try f.writeInput("v5", recipes: ["old1": RegistryFixture.recipe("old1"), "keep": RegistryFixture.recipe("keep")], golden: fullGolden("old1")),
        keys: [f.indexKey], to: [inner], expiresDays: 30, now: Date(), allowRemovals: true)
    }
    let r = try Retention.collect(racing, options: GCOptions(keepIndexVersions: 2, minAge: 0, now: Date().addingTimeInterval(86400)))
    #expect(r.quarantined.objects == 0)
    #expect(r.warnings.contains { $0.contains("index.json changed while gc ran") })
    for id in try w.pins(5) { #expect(try inner.get(id, maxSize: 1 << 20).count > 0) }
  }
}

/// Sets a file's access and modification times.
func setFileTime(_ path: String, _ date: Date) -> Bool {
  var times = [timespec](repeating: timespec(tv_sec: Int(date.timeIntervalSince1970), tv_nsec: 0), count: 2)
  return utimensat(AT_FDCWD, path, &times, 0) == 0
}

/// A store that runs `publish` once, the first time its live blobs are listed: a publisher
/// racing with gc.
final class PublishDuringListing: ObjectStore, @unchecked Sendable {
  let inner: any ObjectStore
  var publish: (() throws -> Void)?
  init(_ inner: any ObjectStore, publish: @escaping () throws -> Void) {
    self.inner = inner
    self.publish = publish
  }
  var location: String { inner.location }
  func get(_ id: ObjectID, maxSize: Int) throws -> Data { try inner.get(id, maxSize: maxSize) }
  func contains(_ id: ObjectID) throws -> Bool { try inner.contains(id) }
  func list() throws -> [ObjectID] { try inner.list() }
  func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? { try inner.readDocument(name, maxSize: maxSize) }
  func apply(_ change: StoreChange) throws -> ApplyReport { try inner.apply(change) }
  func remove(_ ids: [ObjectID]) throws { try inner.remove(ids) }
  func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    let out = try inner.inventory(area, dated: dated)
    if area == .live, let p = publish {
      publish = nil
      try p()
    }
    return out
  }
  func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int { try inner.move(ids, from: from, to: to) }
  func remove(_ ids: [ObjectID], from area: ObjectArea) throws { try inner.remove(ids, from: area) }
}
