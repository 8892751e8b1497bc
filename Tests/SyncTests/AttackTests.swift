import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// A published registry in a directory store and a client that trusts it.
struct World {
  let f: RegistryFixture
  let store: DirectoryStore
  let input: PublishInput

  init(recipes: [String] = ["fzf", "jq"], now: Date = Date()) throws {
    f = try RegistryFixture(now: now)
    store = DirectoryStore(path: f.dir.file("store"))
    try f.initialize(store)
    input = try f.writeInput(
      recipes: Dictionary(uniqueKeysWithValues: recipes.map { ($0, RegistryFixture.recipe($0)) }),
      golden: ["fzf/v0.60.0-linux-amd64.json": RegistryFixture.golden("fzf", version: "0.60.0")])
    try f.publish(input, to: store)
  }

  var url: String { "file://" + store.root }
  func client(_ sources: [String]? = nil, at t: Date? = nil) throws -> Client { try f.client(sources ?? [url], at: t) }
  func recipeID(_ name: String) -> ObjectID { SHA256.hash(Data(RegistryFixture.recipe(name).utf8)) }
  var cache: DirectoryStore { DirectoryStore(path: f.dir.file("home/cache")) }
  func later(_ s: Double) -> Date { f.now.addingTimeInterval(s) }
}

/// One test per attack and fault case of `../shared/context/anchors.md` that this layer
/// handles (TUF conformance names in the comments). Each asserts the refusal, its exit code
/// (through `TsukuError.code`) and that nothing bad reached the cache.
@Suite struct AttackTests {
  // MARK: signatures

  @Test func belowThresholdIsRejected() throws {  // test_snapshot_does_not_meet_threshold
    let f = try RegistryFixture()
    let k2 = try SigningKey.generate()
    let root = try RegistryFixture.makeRoot(
      version: 1, signers: [f.rootKey], rootKeys: [f.rootKey], indexKeys: [f.indexKey, k2], revocationKeys: [f.revocationKey],
      expires: f.now.addingTimeInterval(86400), thresholds: (1, 2, 1))
    let store = MemoryStore()
    try store.apply(StoreChange(documents: [(.root(1), root.bytes)]))
    let e = #expect(throws: TsukuError.self) {
      try Publisher.publish(try f.writeInput(recipes: ["aa": RegistryFixture.recipe("aa")]), keys: [f.indexKey], to: [store], expiresDays: 1, now: f.now)
    }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("1 valid signature of 2 required") == true)
    #expect(try store.readDocument(.index, maxSize: 1 << 16) == nil)
  }

  // MARK: rollback, freeze, mix-and-match

  @Test func expiredLocalCopyDoesNotBlockFetchingAFreshOne() throws {  // test_expired_local_timestamp
    let w = try World()
    _ = try w.client().updateRegistry()
    // Two months later the cached index has expired; reading it alone is refused...
    let later = w.later(60 * 86400)
    #expect(throws: TsukuError.self) { try w.client([], at: later).recipe("fzf") }
    // ...but a fresh index from the source is accepted.
    try Maintainer.resign(
      keys: [w.f.indexKey], revocationKeys: [w.f.revocationKey], in: w.store, expiresDays: 30, now: later.addingTimeInterval(-60))
    #expect(try w.client(at: later).updateRegistry().index_version == 2)
    #expect(try w.client([], at: later).recipe("fzf") == Data(RegistryFixture.recipe("fzf").utf8))
  }

  @Test func shardWhoseHashDiffersFromThePinnedOneIsRejected() throws {  // test_snapshot_hash_mismatch
    let w = try World()
    let idx = try #require(try Publisher.currentIndex(of: w.store, root: w.f.root))
    let tree = try IndexTree.parse(try w.store.get(idx.index.tree.sha256, maxSize: 1 << 20), what: "t")
    let shard = tree.shards[0]
    // An entry removed from a shard: the shard no longer hashes to the pinned name.
    var s = try IndexShard.parse(try w.store.get(shard.sha256, maxSize: 1 << 20), what: "s")
    s.entries.removeFirst()
    try JSON.encode(s).write(to: URL(fileURLWithPath: w.store.root + "/" + shard.sha256.path))
    let e = #expect(throws: TsukuError.self) { try w.client().updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(!(try w.cache.contains(shard.sha256)))
    #expect(try w.cache.readDocument(.index, maxSize: 1 << 16) == nil)
  }

  @Test func anEntryCannotVanishWithoutASignedChange() throws {
    let w = try World()
    _ = try w.client().updateRegistry()
    // The attacker rewrites the tree to drop a shard and keeps the signed index.
    let idx = try #require(try Publisher.currentIndex(of: w.store, root: w.f.root))
    var tree = try IndexTree.parse(try w.store.get(idx.index.tree.sha256, maxSize: 1 << 20), what: "t")
    tree.shards.removeFirst()
    try JSON.encode(tree).write(to: URL(fileURLWithPath: w.store.root + "/" + idx.index.tree.sha256.path))
    // A synced client is unaffected: its index.json is unchanged, its verified tree cached.
    #expect(try w.client().updateRegistry().up_to_date)
    #expect(try w.client([]).entries().count == 2)
    // A new client is refused: the tree no longer hashes to what the signed index pins.
    let fresh = try w.f.client([w.url], home: "home2")
    let e = #expect(throws: TsukuError.self) { try fresh.updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(try Home(path: w.f.dir.file("home2")).cache.readDocument(.index, maxSize: 1 << 16) == nil)
  }

  // MARK: key rotation

  func rotate(_ w: World, newIndex: SigningKey? = nil, expiresIn: Double = 86400 * 30) throws -> TrustedRoot {
    let head = try RegistryHead(w.store)
    let env = try Maintainer.nextRoot(
      from: head.root, keys: newIndex.map { [.index: [$0.publicKey]] } ?? [:], thresholds: [:], expiresDays: 30,
      now: w.f.now.addingTimeInterval(expiresIn - 30 * 86400), signers: [w.f.rootKey])
    return try Maintainer.writeRoot(env, to: w.store)
  }

  @Test func clientWalksRootRotationsOneVersionAtATime() throws {  // test_root_rotation
    let w = try World()
    _ = try w.client().updateRegistry()
    _ = try rotate(w)
    _ = try rotate(w)
    try Maintainer.resign(keys: [w.f.indexKey], in: w.store, expiresDays: 10, now: w.later(5))
    let r = try w.client(at: w.later(10)).updateRegistry()
    #expect(r.index_version == 2)
    #expect(try Home(path: w.f.dir.file("home")).loadTrust()?.0.version == 3)
  }

  @Test func tooManyRotationsAreRefused() throws {
    let w = try World()
    var file = try IndexFile.parse(try #require(try w.store.readDocument(.index, maxSize: 1 << 16)), what: "i")
    file.root_version = 1 + Limits.maxRootRotations + 1
    try w.store.apply(StoreChange(documents: [(.index, file.bytes)]))
    let e = #expect(throws: TsukuError.self) { try w.client().updateRegistry() }
    #expect(e?.message.contains("more than 256 rotations") == true)
  }

  @Test func expiredIntermediateRootIsFineExpiredFinalRootIsNot() throws {
    let w = try World()
    _ = try rotate(w, expiresIn: 3600)  // root 2 expires in an hour
    _ = try rotate(w, expiresIn: 86400 * 30)  // root 3 is fresh
    try Maintainer.resign(keys: [w.f.indexKey], in: w.store, expiresDays: 10, now: w.later(5))
    #expect(try w.client(at: w.later(7200)).updateRegistry().index_version == 2)
    // With only root 2 published and expired, the walk ends on an expired root: refused.
    let v = try World()
    _ = try rotate(v, expiresIn: 3600)
    try Maintainer.resign(keys: [v.f.indexKey], in: v.store, expiresDays: 10, now: v.later(5))
    let e = #expect(throws: TsukuError.self) { try v.client(at: v.later(7200)).updateRegistry() }
    #expect(e?.message.contains("root version 2 expired") == true)
  }

  @Test func fastForwardRecoveryAfterAnIndexKeyRotation() throws {
    let w = try World()
    // The old index key leaked: the attacker publishes version 1000 and a client takes it.
    for _ in 0..<3 { try Maintainer.resign(keys: [w.f.indexKey], in: w.store, expiresDays: 10, now: w.later(1)) }
    _ = try w.client().updateRegistry()
    #expect(try Home(path: w.f.dir.file("home")).loadTrust()?.1.index_version == 4)
    // Maintainers rotate the index key and publish version 1 under it... (new versions restart
    // from the store's current one; what matters is the client accepts a lower one).
    let newKey = try SigningKey.generate()
    _ = try rotate(w, newIndex: newKey)
    var file = try IndexFile.parse(try #require(try w.store.readDocument(.index, maxSize: 1 << 16)), what: "i")
    var p = try IndexPayload.parse(try #require(file.index.payloadBytes), what: "p")
    p.version = 2
    file.index = try Envelope.sign(type: .index, payload: JSON.encode(p), keys: [newKey])
    file.root_version = 2
    try w.store.apply(StoreChange(documents: [(.index, file.bytes)]))
    #expect(try w.client(at: w.later(2)).updateRegistry().index_version == 2)
  }

  @Test func cachedIndexIsReverifiedAgainstTheCurrentSigner() throws {
    let w = try World()
    _ = try w.client().updateRegistry()
    // Trust moves to a root whose index key is a new one; the cached index signed by the old
    // key must no longer be served.
    let newKey = try SigningKey.generate()
    let r2 = try rotate(w, newIndex: newKey)
    let home = Home(path: w.f.dir.file("home"))
    try home.saveTrust(root: r2, state: try #require(try home.loadTrust()).1)
    let e = #expect(throws: TsukuError.self) { try w.client([]).recipe("fzf") }
    #expect(e?.code == .integrity)
  }

  // MARK: content

  @Test func blobLongerThanDeclaredIsAborted() throws {  // endless data
    let w = try World()
    let id = w.recipeID("fzf")
    let e = #expect(throws: TsukuError.self) { try w.store.get(id, maxSize: 10) }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("more than the 10 allowed") == true)
  }

  @Test func metadataSizeLimitsApplyBeforeParsing() throws {
    let w = try World()
    try w.store.apply(StoreChange(documents: [(.index, Data(repeating: 0x20, count: Limits.indexFile + 1))]))
    let e = #expect(throws: TsukuError.self) { try w.client().updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("more than the 65536 allowed") == true)
  }

  @Test func unknownHashAlgorithmIsRefused() throws {
    let text = #"{"format":1,"type":"index","version":1,"expires":"2099-01-01T00:00:00Z","published":"2026-01-01T00:00:00Z","tree":{"sha3-256":"00","size":1},"recipes":0,"golden":0}"#
    let e = #expect(throws: TsukuError.self) { try IndexPayload.parse(Data(text.utf8), what: "index") }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("tree.sha256") == true)
  }

  @Test func halfWrittenTemporaryFileIsNeverABlob() throws {
    let w = try World()
    let id = w.recipeID("jq")
    let dir = w.store.root + "/objects/sha256/" + id.fanout
    try Data("partial".utf8).write(to: URL(fileURLWithPath: dir + "/.tmp-\(id.hex.prefix(16))-1-2"))
    #expect(try w.store.list().allSatisfy { $0.fanout.count == 2 })
    #expect(try w.store.get(id, maxSize: 1 << 20) == Data(RegistryFixture.recipe("jq").utf8))
  }

  @Test func unwritableStateDirectoryFailsClosed() throws {
    let w = try World()
    let c = Client(home: Home(path: "/proc/tsuku-home"), sources: [w.url], now: w.f.now)
    let e = #expect(throws: TsukuError.self) { try c.updateRegistry() }
    #expect(e?.code == .other)
  }

  // MARK: revocation

  @Test func revokedHashIsRefusedAndPurgedEvenWhenCached() throws {
    let w = try World()
    _ = try w.client().updateRegistry()
    let id = w.recipeID("fzf")
    #expect(try w.cache.contains(id))
    try Maintainer.revoke([.hash(id)], reason: "backdoored release", keys: [w.f.revocationKey], in: w.store, expiresDays: 10, now: w.later(1))
    _ = try w.client(at: w.later(2)).updateRegistry()
    #expect(!(try w.cache.contains(id)))
    let e = #expect(throws: TsukuError.self) { try w.client([], at: w.later(3)).recipe("fzf") }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("revoked: backdoored release") == true)
    // The other recipe is untouched.
    #expect(try w.client([], at: w.later(3)).recipe("jq") == Data(RegistryFixture.recipe("jq").utf8))
  }

  @Test func revocationKeepsTheIndexSectionByteForByte() throws {
    let w = try World()
    let before = try IndexFile.parse(try #require(try w.store.readDocument(.index, maxSize: 1 << 16)), what: "i")
    try Maintainer.revoke([.hash(w.recipeID("jq"))], reason: "x", keys: [w.f.revocationKey], in: w.store, expiresDays: 10, now: w.later(1))
    let after = try IndexFile.parse(try #require(try w.store.readDocument(.index, maxSize: 1 << 16)), what: "i")
    #expect(after.index == before.index)
    #expect(after.revocation != before.revocation)
    // And a responder cannot use an index key.
    #expect(throws: TsukuError.self) {
      try Maintainer.revoke([.hash(w.recipeID("fzf"))], reason: "x", keys: [w.f.indexKey], in: w.store, expiresDays: 10, now: w.later(2))
    }
  }

  @Test func revocationListRollbackIsRejected() throws {
    let w = try World()
    let v1 = try #require(try w.store.readDocument(.index, maxSize: 1 << 16))
    try Maintainer.revoke([.hash(w.recipeID("jq"))], reason: "x", keys: [w.f.revocationKey], in: w.store, expiresDays: 10, now: w.later(1))
    _ = try w.client(at: w.later(2)).updateRegistry()
    try w.store.apply(StoreChange(documents: [(.index, v1)]))
    let e = #expect(throws: TsukuError.self) { try w.client(at: w.later(3)).updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("revocation list version 1, older than the trusted version 2") == true)
  }

  @Test func expiredRevocationListIsRejected() throws {
    let w = try World()
    try Maintainer.revoke([.hash(w.recipeID("jq"))], reason: "x", keys: [w.f.revocationKey], in: w.store, expiresDays: 1, now: w.later(1))
    try Maintainer.resign(keys: [w.f.indexKey], in: w.store, expiresDays: 30, now: w.later(2))
    let e = #expect(throws: TsukuError.self) { try w.client(at: w.later(2 * 86400)).updateRegistry() }
    #expect(e?.message.contains("revocation list version 2, which expired at") == true)
  }

  @Test func revokedKeysSignaturesNoLongerCount() throws {
    let w = try World()
    try Maintainer.revoke([.key(w.f.indexKey.keyID)], reason: "laptop stolen", keys: [w.f.revocationKey], in: w.store, expiresDays: 10, now: w.later(1))
    let e = #expect(throws: TsukuError.self) { try w.client(at: w.later(2)).updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("0 valid signatures of 1 required") == true)
    // Maintainers can still recover: rotate to a new index key and re-sign.
    let newKey = try SigningKey.generate()
    let env = try Maintainer.nextRoot(
      from: try RegistryHead(w.store).root, keys: [.index: [newKey.publicKey]], thresholds: [:], expiresDays: 30, now: w.later(3),
      signers: [w.f.rootKey])
    _ = try Maintainer.writeRoot(env, to: w.store)
    try Maintainer.resign(keys: [newKey], in: w.store, expiresDays: 10, now: w.later(4))
    #expect(try w.client(at: w.later(5)).updateRegistry().index_version == 2)
  }

  @Test func strippedOrOlderRevocationSectionIsRefusedEvenByANewClient() throws {
    let w = try World()
    try Maintainer.revoke([.hash(w.recipeID("fzf"))], reason: "bad", keys: [w.f.revocationKey], in: w.store, expiresDays: 10, now: w.later(1))
    // Publishes without the revoked recipe (a publish refuses a revoked hash); pins revocation version 2.
    try w.f.publish(
      try w.f.writeInput("without-fzf", recipes: ["jq": RegistryFixture.recipe("jq")]), to: w.store, at: w.later(2),
      withRevocation: false)
    var file = try IndexFile.parse(try #require(try w.store.readDocument(.index, maxSize: 1 << 16)), what: "i")
    file.revocation = nil
    let mirror = DirectoryStore(path: w.f.dir.file("mirror"))
    try mirror.apply(StoreChange(objects: try w.store.list().map { try w.store.get($0, maxSize: 1 << 20) }, documents: [(.root(1), w.f.root.bytes), (.index, file.bytes)]))
    let fresh = try w.f.client([mirror.root], home: "fresh", at: w.later(3))
    let e = #expect(throws: TsukuError.self) { try fresh.updateRegistry() }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("requires version 2 or later") == true)
    #expect(try Home(path: w.f.dir.file("fresh")).cache.readDocument(.index, maxSize: 1 << 16) == nil)
  }

  // MARK: staging across machines

  @Test func stagedIndexNeedsTheThresholdAndCountsEachKeyOnce() throws {
    let f = try RegistryFixture()
    let k2 = try SigningKey.generate()
    let root = try RegistryFixture.makeRoot(
      version: 1, signers: [f.rootKey], rootKeys: [f.rootKey], indexKeys: [f.indexKey, k2], revocationKeys: [f.revocationKey],
      expires: f.now.addingTimeInterval(86400 * 30), thresholds: (1, 2, 1))
    let store = DirectoryStore(path: f.dir.file("store"))
    try store.apply(StoreChange(documents: [(.root(1), root.bytes)]))
    let stage = f.dir.file("staged.json")
    try Publisher.publish(
      try f.writeInput(recipes: ["aa": RegistryFixture.recipe("aa")]), keys: [f.indexKey], to: [store], expiresDays: 10, now: f.now,
      stage: stage)
    #expect(try store.readDocument(.index, maxSize: 1 << 16) == nil)
    var s = try Staged.read(stage)
    try s.addSignatures([f.indexKey])  // the same key again: still one
    try s.write(to: stage)
    #expect(throws: TsukuError.self) { try Staged.read(stage).publish(to: store, now: f.now) }
    try s.addSignatures([k2])
    try s.write(to: stage)
    #expect(try Staged.read(stage).publish(to: store, now: f.now).contains("version 1"))
    #expect(try store.readDocument(.index, maxSize: 1 << 16) != nil)
  }

  // MARK: audit

  @Test func auditLogRecordsFetchesHitsFailuresAndRevocationsWithoutSecrets() throws {
    let w = try World()
    _ = try w.client().command { try $0.updateRegistry() }
    _ = try w.client([]).command { try $0.recipe("fzf") }
    #expect(try tamperCachedBlob(cacheDir: w.cache.root, id: w.recipeID("jq")))
    _ = try? w.client([]).command { try $0.recipe("jq") }
    let log = AuditLog(home: Home(path: w.f.dir.file("home")))
    let events = log.read()
    // The sync's one `receive` line lists what it fetched.
    #expect(events.contains { $0.event == "receive" && $0.index_version == 1 && $0.source != nil })
    #expect(log.report(sha256: w.recipeID("fzf")).blobs.first?.receipts.first?.index_version == 1)
    #expect(events.contains { $0.event == "cache_hit" && $0.name == "fzf" && $0.age_seconds != nil })
    #expect(events.contains { $0.event == "verify_failure" && $0.name == "jq" })
    #expect(log.read(name: "fzf").allSatisfy { $0.name == "fzf" })
    let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: log.path)), as: UTF8.self)
    #expect(!text.contains(Data(w.f.indexKey.seed ?? []).base64EncodedString()))
    #expect(AuditLog.redact("https://user:secret@host/x") == "https://host/x")
  }

  @Test func auditLogRotatesBySize() throws {
    let f = try RegistryFixture()
    let log = AuditLog(home: Home(path: f.dir.file("home")), maxBytes: 400, keep: 2)
    for i in 0..<20 {
      log.record(AuditEvent("fetch", time: f.now, name: "tool\(i)"))
      try log.flush()
    }
    #expect(FileManager.default.fileExists(atPath: log.path + ".1"))
    #expect(FileManager.default.fileExists(atPath: log.path + ".2"))
    #expect(!FileManager.default.fileExists(atPath: log.path + ".3"))
    #expect(log.read().last?.name == "tool19")
  }
}
