import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// `n` distinct blobs of a little more than `size` bytes each.
private func blobs(_ n: Int, size: Int, seed: Int) -> [Data] {
  (0..<n).map { Data("\(seed)-\($0):".utf8) + Data(repeating: UInt8(truncatingIfNeeded: $0 &+ seed), count: size) }
}

/// Writes the new packs to `store` and returns the blob ids each pack of `refs` holds,
/// checking every pack against its reference and the cap.
private func packed(_ refs: [IndexTree.PackRef], _ new: [BlobSource], in store: MemoryStore) throws -> [[ObjectID]] {
  try store.apply(StoreChange(), sources: new)
  return try refs.map { r in
    let pack = try Pack(try store.get(r.sha256, maxSize: r.size))
    #expect(pack.entries.count == r.count)
    #expect(pack.entries.reduce(0) { $0 + $1.size } <= PackPlanner.maxPackBytes)
    return pack.entries.map(\.id)
  }
}

@Suite struct PackPlannerTests {
  @Test func theLimitOnPacksGrowsWithTheLiveBytes() {
    #expect(PackPlanner.maxPacks(liveBytes: 0) == 5)
    #expect(PackPlanner.maxPacks(liveBytes: 50 << 20) == 5)
    #expect(PackPlanner.maxPacks(liveBytes: 64 << 20) == 6)
    // The real registry at 100K recipes: about 3.8 GB.
    #expect(PackPlanner.maxPacks(liveBytes: 3_800_000_000) == 340)
  }

  @Test func newBlobsGoIntoPacksOfAtMost16MiB() throws {
    let store = MemoryStore()
    let live = blobs(40, size: 1 << 20, seed: 1)
    let (refs, new) = try PackPlanner.plan(live: live.map(BlobSource.init), previous: [], store: store)
    // 15 blobs of a little over 1 MiB fill a pack.
    #expect(refs.map(\.count) == [15, 15, 10])
    #expect(new.map(\.id) == refs.map(\.sha256))
    let ids = try packed(refs, new, in: store)
    #expect(Set(ids.joined()) == Set(live.map { SHA256.hash($0) }))
  }

  @Test func smallChangesAddSmallPacksAndMergeThemWithinTheLimit() throws {
    let store = MemoryStore()
    var live = blobs(40, size: 1 << 20, seed: 2)
    var (refs, new) = try PackPlanner.plan(live: live.map(BlobSource.init), previous: [], store: store)
    _ = try packed(refs, new, in: store)
    let big = Set(refs.map(\.sha256))
    for round in 0..<12 {
      // One blob replaced by a small new one per round.
      live[round] = Data("round \(round)".utf8)
      (refs, new) = try PackPlanner.plan(live: live.map(BlobSource.init), previous: refs, store: store)
      let ids = try packed(refs, new, in: store)
      #expect(refs.count <= PackPlanner.maxPacks(liveBytes: live.reduce(0) { $0 + $1.count }))
      #expect(Set(ids.joined()).isSuperset(of: live.map { SHA256.hash($0) }))
      // The full packs stay while at least half of their bytes are live, so a round writes a
      // small pack, or repacks the live half of one that fell under half: in round 7 the first
      // full pack (7 of 15 MiB live), in round 11 the pack that round made (3 of 7 MiB).
      let written = new.reduce(0) { $0 + $1.size }
      #expect(written < ([7, 11].contains(round) ? 8 << 20 : 1 << 20))
      #expect(![7, 11].contains(round) || written > 3 << 20)
      #expect(refs.filter { big.contains($0.sha256) }.count == (round < 7 ? 3 : 2))
    }
  }

  @Test func aPackMostlyDeadIsRepackedAndOneOverTheCapIsNotRead() throws {
    let store = MemoryStore()
    let old = blobs(20, size: 1 << 20, seed: 3)
    // A pack of everything, as publishes made before the cap: over 16 MiB, so never kept.
    let legacy = Pack.build(old)
    let small = Pack.build(Array(old.prefix(2)))
    try store.apply(StoreChange(objects: [legacy, small]))
    let refs = [legacy, small].map {
      IndexTree.PackRef(sha256: SHA256.hash($0), size: $0.count, count: $0 == small ? 2 : 20)
    }
    let counting = FaultyStore(.none, wrapping: store)
    let (kept, new) = try PackPlanner.plan(live: old.map(BlobSource.init), previous: refs, store: counting)
    #expect(counting.calls == 1)
    #expect(kept.first == refs[1])
    #expect(!kept.contains(refs[0]))
    let ids = try packed(kept, new, in: store)
    #expect(Set(ids.joined()) == Set(old.map { SHA256.hash($0) }))

    // Half of the small pack's bytes dead: still kept; more than half: its live blob is
    // packed anew.
    let half = try PackPlanner.plan(
      live: Array(old.dropFirst()).map(BlobSource.init), previous: [refs[1]], store: store)
    #expect(half.0.first == refs[1])
    let third = [old[0], Data("x".utf8)]
    let mostlyDead = Pack.build([old[1], Data(repeating: 7, count: 3 << 20)])
    try store.apply(StoreChange(objects: [mostlyDead]))
    let ref = IndexTree.PackRef(sha256: SHA256.hash(mostlyDead), size: mostlyDead.count, count: 2)
    let (k, n) = try PackPlanner.plan(live: (third + [old[1]]).map(BlobSource.init), previous: [ref], store: store)
    #expect(!k.contains(ref) && n.count == 1)
  }

  @Test func aKeptPackReachesASecondTargetThatLacksIt() throws {
    let f = try RegistryFixture()
    let a = DirectoryStore(path: f.dir.file("a"))
    let b = MemoryStore()
    try f.initialize(a)
    try f.initialize(b)
    var recipes = [String: String]()
    for i in 0..<20 { recipes["tool\(i)"] = RegistryFixture.recipe("tool\(i)") }
    _ = try Publisher.publish(
      try f.writeInput("v1", recipes: recipes), keys: [f.indexKey], to: [a], expiresDays: 30, now: f.now, packs: true)
    recipes["tool3"] = RegistryFixture.recipe("tool3", description: "changed")
    let r = try Publisher.publish(
      try f.writeInput("v2", recipes: recipes), keys: [f.indexKey], to: [a, b], expiresDays: 30,
      now: f.now.addingTimeInterval(60), packs: true)
    let index = try #require(try Publisher.currentIndex(of: b, root: try Publisher.currentRoot(of: b)))
    let tree = try IndexTree.parse(try b.get(index.index.tree.sha256, maxSize: index.index.tree.size), what: "tree")
    let packs = try #require(tree.packs)
    #expect(packs.count == 2)
    for p in packs { #expect(try b.contains(p.sha256)) }
    // The first target had the kept pack: it wrote the new one only.
    #expect(r.targets[0].report.objectsWritten < r.targets[1].report.objectsWritten)
    #expect(
      try Client(home: try f.home(), chain: SourceChain([a.root]), now: f.now.addingTimeInterval(120)).updateRegistry()
        .recipes == 20)
  }

  @Test func aPrunedGitTargetKeepsThePacksItsTreeNamesInOneCommitPerPublish() throws {
    let f = try RegistryFixture()
    let repo = try makeGitRepository(at: f.dir.file("repo"))
    let git = try GitStore(repository: repo)
    try f.initialize(git)
    var recipes = [String: String]()
    for i in 0..<30 { recipes["tool\(i)"] = RegistryFixture.recipe("tool\(i)") }
    func packs() throws -> [IndexTree.PackRef] {
      let store = try GitStore(repository: repo)
      let index = try #require(try Publisher.currentIndex(of: store, root: try Publisher.currentRoot(of: store)))
      let tree = try IndexTree.parse(
        try store.get(index.index.tree.sha256, maxSize: index.index.tree.size), what: "tree")
      return try #require(tree.packs)
    }
    var first: IndexTree.PackRef?
    for round in 0..<3 {
      if round > 0 { recipes["tool\(round)"] = RegistryFixture.recipe("tool\(round)", description: "round \(round)") }
      let r = try Publisher.publish(
        try f.writeInput("v\(round)", recipes: recipes), keys: [f.indexKey], to: [git], expiresDays: 30,
        now: f.now.addingTimeInterval(Double(round) * 60), prune: true, packs: true)
      #expect(r.targets[0].report.commit != nil)
      if round == 0 { first = try packs().first }
    }
    // One commit for the root, one per publish.
    #expect(
      try runGit(["rev-list", "--count", "HEAD"], in: repo).trimmingCharacters(in: .whitespacesAndNewlines) == "4")
    // The first publish's pack is still named, and still in the pruned tree, like every pack.
    let now = try packs()
    let kept = try #require(first)
    #expect(now.count >= 2 && now.contains(kept))
    let store = try GitStore(repository: repo)
    for p in now { #expect(try store.contains(p.sha256)) }
    let r = try Client(
      home: try f.home(), chain: SourceChain(["git+file://" + repo]), now: f.now.addingTimeInterval(300)
    )
    .updateRegistry()
    #expect(r.recipes == 30)
    #expect(
      try Client(home: try f.home(), chain: .off, now: f.now).recipe("tool2")
        == Data(RegistryFixture.recipe("tool2", description: "round 2").utf8))
  }
}
