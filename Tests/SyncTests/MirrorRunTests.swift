import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// `Mirror.run` on stores in this process: how often it asks the source and the targets (a
/// count, not a time), a dry run, an expired source, a root the source's chain must hold.
@Suite struct MirrorRunTests {
  /// A registry of `count` recipes published with packs to a directory.
  func registry(_ count: Int = 60) throws -> (RegistryFixture, DirectoryStore) {
    let f = try RegistryFixture()
    let store = DirectoryStore(path: f.dir.file("source"))
    try f.initialize(store)
    var recipes = [String: String]()
    for i in 0..<count { recipes["tool\(i)"] = RegistryFixture.recipe("tool\(i)") }
    try Publisher.publish(
      try f.writeInput("v1", recipes: recipes), keys: [f.indexKey], revocationKeys: [f.revocationKey], to: [store],
      expiresDays: 30, now: f.now, packs: true)
    return (f, store)
  }

  @Test func aColdMirrorReadsTheSourceAHandfulOfTimesAndListsEachTargetOnce() throws {
    let (f, store) = try registry(300)
    let source = FaultyStore(.none, wrapping: store)
    let memory = MemoryStore()
    let target = FaultyStore(.none, wrapping: memory)
    var r = try Mirror.run(from: source, to: [("memory", target)], options: MirrorOptions(now: f.now))
    #expect(r.exit_code == 0)
    #expect(r.targets[0].status == "copied")
    #expect(r.targets[0].objects_copied == r.pinned_objects && r.pinned_objects > 300)
    #expect(Set(try memory.list()) == Set(try store.list()))
    #expect(try memory.readDocument(.index, maxSize: 1 << 20) == (try store.readDocument(.index, maxSize: 1 << 20)))
    // root/1, root/2 (absent), index.json, index/1.index.json, the tree, the pack: not one
    // read per blob.
    #expect(r.fetched_packs == 1)
    #expect(source.calls <= 6, "\(source.calls) reads of the source")
    // Its roots, index.json and archive read, one listing, one change: no read per blob.
    #expect(target.calls <= 5, "\(target.calls) calls to the target")

    // Again: nothing copied; the source is asked only for its documents.
    let (s0, t0) = (source.calls, target.calls)
    r = try Mirror.run(from: source, to: [("memory", target)], options: MirrorOptions(now: f.now))
    #expect(r.targets[0].status == "up_to_date" && r.targets[0].objects_copied == 0)
    #expect(r.fetched_objects == 0)
    #expect(source.calls - s0 <= 4, "\(source.calls - s0) reads of the source")
    #expect(r.targets[0].objects_present == r.pinned_objects)
    _ = t0
  }

  @Test func aDryRunVerifiesAndReportsButWritesNothing() throws {
    let (f, store) = try registry()
    let target = MemoryStore()
    var o = MirrorOptions(now: f.now)
    o.dryRun = true
    let r = try Mirror.run(from: store, to: [("memory", target)], options: o)
    #expect(r.dry_run && r.exit_code == 0)
    #expect(r.targets[0].status == "would_copy")
    #expect(r.targets[0].objects_copied == r.pinned_objects && r.targets[0].documents_written == 3)
    #expect(r.targets[0].index_version_before == nil && r.targets[0].index_version_after == 1)
    #expect(try target.list().isEmpty)
    #expect(try target.readDocument(.index, maxSize: 1 << 20) == nil)
    #expect(try target.readDocument(.root(1), maxSize: 1 << 20) == nil)
  }

  @Test func anExpiredSourceIndexIsCopiedWithAWarning() throws {
    let (f, store) = try registry()
    let target = MemoryStore()
    let r = try Mirror.run(
      from: store, to: [("memory", target)], options: MirrorOptions(now: f.now.addingTimeInterval(40 * 86400)))
    #expect(r.index_expired && r.exit_code == 0)
    #expect(r.warnings.contains { $0.hasPrefix("index version 1 of '\(store.location)' expired at \(r.index_expires)") }, "\(r.warnings)")
    #expect(r.targets[0].status == "copied")
  }

  @Test func aSourceWhoseChainDoesNotHoldTheTrustedRootIsRefused() throws {
    let (f, store) = try registry()
    let other = try RegistryFixture()
    let target = MemoryStore()
    let e = #expect(throws: TsukuError.self) {
      try Mirror.run(from: store, to: [("memory", target)], options: MirrorOptions(anchor: other.root, now: f.now))
    }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("does not hold the trusted root version 1") == true, "\(e?.message ?? "")")
    #expect(try target.readDocument(.root(1), maxSize: 1 << 20) == nil)
    // The registry's own root is accepted.
    let r = try Mirror.run(from: store, to: [("memory", target)], options: MirrorOptions(anchor: f.root, now: f.now))
    #expect(r.exit_code == 0)
  }

  @Test func aTargetWithAnotherRootIsRefusedAloneAndTheOthersAreCopied() throws {
    let (f, store) = try registry()
    let other = try RegistryFixture()
    let foreign = MemoryStore()
    try other.initialize(foreign)
    let empty = MemoryStore()
    let r = try Mirror.run(from: store, to: [("foreign", foreign), ("empty", empty)], options: MirrorOptions(now: f.now))
    #expect(r.exit_code == 1)
    #expect(r.targets.map(\.status) == ["refused", "copied"])
    #expect(
      r.targets[0].error
        == "'foreign' has root version 1 with other bytes than '\(store.location)': the source's root chain does not extend it")
    #expect(try foreign.readDocument(.index, maxSize: 1 << 20) == nil)
    #expect(try empty.readDocument(.index, maxSize: 1 << 20) != nil)
  }

  /// A target a responder revoked on alone (a newer revocation list) is never given the
  /// source's older list, even when the source is ahead on the index.
  @Test func aTargetWithANewerRevocationListIsRefusedWhateverTheIndexVersions() throws {
    let (f, store) = try registry()
    let target = MemoryStore()
    #expect(try Mirror.run(from: store, to: [("target", target)], options: MirrorOptions(now: f.now)).exit_code == 0)
    // The target: revocation list 2 (index 1). The source: index 2 (revocation list 1).
    try Maintainer.revoke(
      [.hash(try #require(ObjectID(hex: String(repeating: "c", count: 64))))], reason: "compromised", keys: [f.revocationKey],
      in: target, expiresDays: 30, now: f.now)
    var recipes = [String: String]()
    for i in 0..<61 { recipes["tool\(i)"] = RegistryFixture.recipe("tool\(i)") }
    try Publisher.publish(
      try f.writeInput("v2", recipes: recipes), keys: [f.indexKey], to: [store], expiresDays: 30, now: f.now, packs: true)
    let before = try target.readDocument(.index, maxSize: 1 << 20)
    let r = try Mirror.run(from: store, to: [("target", target)], options: MirrorOptions(now: f.now))
    #expect(r.exit_code == 1)
    #expect(r.targets.map(\.status) == ["refused"])
    #expect(r.targets[0].error?.contains("has revocation list version 2, newer than the 1 of") == true, "\(r.targets[0].error ?? "")")
    #expect(try target.readDocument(.index, maxSize: 1 << 20) == before)
  }
}
