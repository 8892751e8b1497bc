import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The structures that keep lookups and memory flat as the registry grows: subtrees of a large
/// index tree, cached packs handled on disk, the shard scan of `verify`, sync batches.
@Suite struct ScaleTests {
  static func entries(_ n: Int) -> [IndexEntry] {
    (0..<n).map { i in
      let recipe = Data("recipe \(i)".utf8)
      return IndexEntry(
        name: "tool\(i)", category: .community, recipe: BlobRef(of: recipe),
        golden: [GoldenRef(platform: "linux-amd64", version: "1.\(i % 7)", sha256: SHA256.hash("golden \(i)"), size: 9)],
        description: i % 2 == 0 ? #"says "recipe":{"sha256":"\#(String(repeating: "a", count: 64))","size":1}"# : "plain",
        homepage: "https://example.invalid/\(i)", type: "tool", dependencies: [], runtime_dependencies: [], source_commit: nil)
    }
  }

  /// Every blob of a tree built from `entries`, by hash.
  static func blobs(_ entries: [IndexEntry]) -> (tree: IndexTree, blobs: [ObjectID: Data]) {
    let (tree, others) = IndexTreeBuilder.build(entries)
    var all = [ObjectID: Data]()
    for b in others { all[SHA256.hash(b)] = b }
    return (try! IndexTree.parse(tree, what: "tree"), all)
  }

  @Test func aLargeIndexTreeListsSubtreesAndALookupReadsOneSubtreeAndOneShard() throws {
    let entries = Self.entries(17_000)
    let (tree, blobs) = Self.blobs(entries)
    #expect(tree.prefix_length == 3)
    #expect(tree.shards.isEmpty)
    let subtrees = try #require(tree.subtrees)
    #expect(subtrees.count == 16)
    // The tree stays small: it names 16 subtrees, not 4,096 shards.
    #expect(try JSONEncoder().encode(tree).count < 4_000)
    var reads = 0
    let fetch: IndexTree.Fetch = { ref, _ in
      reads += 1
      return try #require(blobs[ref.sha256])
    }
    for name in ["tool0", "tool8123", "tool16999"] {
      reads = 0
      let s = try #require(try tree.shard(for: name, fetch: fetch))
      #expect(reads == 1)
      let shard = try IndexShard.parse(try #require(blobs[s.sha256]), what: "shard")
      #expect(shard.entries.contains { $0.name == name })
    }
    #expect(try tree.shard(for: "absent-tool", fetch: fetch).map { s in
      try IndexShard.parse(blobs[s.sha256]!, what: "s").entries.contains { $0.name == "absent-tool" }
    } != true)
    let all = try tree.allShards(fetch: fetch)
    #expect(all.count > 3_900 && all.count <= 4096)
    #expect(all.reduce(0) { $0 + $1.entries } == 17_000)
  }

  @Test func aSmallIndexTreeIsUnchangedByTheSubtreeRule() throws {
    let (tree, _) = Self.blobs(Self.entries(1_000))
    // 1,000 names on 256 possible two-digit prefixes (a few stay empty): still one level.
    #expect(tree.subtrees == nil)
    #expect(tree.prefix_length == 2)
    #expect(tree.shards.count > 240 && tree.shards.count <= IndexTree.maxDirectShards)
    let encoded = String(decoding: IndexTreeBuilder.build(Self.entries(1_000)).tree, as: UTF8.self)
    #expect(!encoded.contains("subtrees"))
  }

  @Test func attackSubtreeListingAShardOutsideItsPrefixIsRefused() throws {
    let (tree, blobs) = Self.blobs(Self.entries(17_000))
    let subs = try #require(tree.subtrees)
    // A subtree whose bytes list a shard of another subtree's prefix (a signed tree can only
    // name what its publisher wrote, but a bug or a forged blob must not redirect lookups).
    var forged = try IndexSubtree.parse(blobs[subs[0].sha256]!, what: "s")
    let other = try IndexSubtree.parse(blobs[subs[1].sha256]!, what: "s")
    forged.shards[0] = other.shards[0]
    let bytes = try JSONEncoder().encode(forged)
    var t = tree
    t.subtrees![0] = IndexTree.Subtree(prefix: subs[0].prefix, sha256: SHA256.hash(bytes), size: bytes.count, shards: forged.shards.count)
    #expect(throws: TsukuError.self) {
      _ = try t.allShards(fetch: { ref, _ in ref.sha256 == SHA256.hash(bytes) ? bytes : blobs[ref.sha256]! })
    }
  }

  @Test func verifyScansAShardForItsRecipesEvenWhenADescriptionQuotesTheKey() throws {
    let entries = Self.entries(300)
    let shard = JSON.encode(IndexShard(format: Format.current, type: "index-shard", prefix: "0", entries: entries))
    let refs = try ShardRecipes.parse(shard, expected: entries.count, what: "shard")
    #expect(refs == entries.map(\.recipe))
    // A wrong expected count falls back to the full decoder, which gives the same answer.
    #expect(try ShardRecipes.parse(shard, expected: 1, what: "shard") == entries.map(\.recipe))
  }

  @Test func syncBatchesNeverExceedTheirBudgetButTakeALargeBlobAlone() {
    let items = [(SHA256.hash("a"), 10), (SHA256.hash("b"), 10), (SHA256.hash("c"), 50), (SHA256.hash("d"), 5)]
    let b = items.batched(maxBytes: 20, size: \.1)
    #expect(b.map { $0.map(\.1) } == [[10, 10], [50], [5]])
    #expect([(ObjectID, Int)]().batched(maxBytes: 20, size: \.1).isEmpty)
    // A count bound cuts too; the ranges are those of the batches.
    #expect(items.batchRanges(maxBytes: 100, maxCount: 3, size: \.1) == [0..<3, 3..<4])
  }
}
