import Foundation
import Store

/// Builds the index tree of a set of entries: the entries cut into shards by name prefix, a
/// tree that lists the shards (or, for a large tree, subtrees that list them), and their blobs
/// (format.md §8).
public enum IndexTreeBuilder {
  /// Shards the entries and returns the tree blob plus every shard blob.
  /// (Subtree blobs, when the tree has them, come first in `shards`.)
  public static func build(_ entries: [IndexEntry], packs: [IndexTree.PackRef]? = nil) -> (tree: Data, shards: [Data]) {
    let (length, refs, blobs) = shards(entries)
    let (subtrees, subtreeBlobs) = subtrees(prefixLength: length, shards: refs)
    return (encode(prefixLength: length, shards: refs, subtrees: subtrees, packs: packs), subtreeBlobs + blobs)
  }

  /// The most entries a shard holds on average before the prefix grows by one digit. Fewer
  /// means a bigger tree (about 110 bytes per shard) but smaller changed shards: at 1K
  /// recipes, 64 gave 16 shards of about 28 KB and an incremental sync fetching 2.6x the bytes
  /// that changed after a 1% bump (BENCHMARKS.md); 32 gives 256 shards of about 2 KB.
  static let maxShardAverage = 32

  /// The shards of `entries`: the prefix length (the smallest that keeps shards at
  /// `maxShardAverage` entries on average or fewer), their tree references and their blobs.
  static func shards(_ entries: [IndexEntry]) -> (Int, [IndexTree.Shard], [Data]) {
    var blobs = [Data]()
    let (length, refs) = shards(entries) { blobs.append($0) }
    return (length, refs, blobs)
  }

  /// The same, handing each shard blob to `emit` as it is made (in prefix order) instead of
  /// keeping them.
  static func shards(_ entries: [IndexEntry], emit: (Data) throws -> Void) rethrows -> (Int, [IndexTree.Shard]) {
    var length = 1
    while length < 4 && entries.count > maxShardAverage * (1 << (4 * length)) { length += 1 }
    var groups = [String: [Int]]()
    for (i, e) in entries.enumerated() { groups[IndexTree.prefix(of: e.name, length: length), default: []].append(i) }
    var shardRefs = [IndexTree.Shard]()
    for prefix in groups.keys.sorted() {
      let list = groups[prefix]!.map { entries[$0] }.sorted { $0.name < $1.name }
      let blob = JSON.encode(IndexShard(format: Format.current, type: "index-shard", prefix: prefix, entries: list))
      try emit(blob)
      shardRefs.append(.init(prefix: prefix, sha256: SHA256.hash(blob), size: blob.count, entries: list.count))
    }
    return (length, shardRefs)
  }

  /// The subtrees of a tree with more than `IndexTree.maxDirectShards` shards (nil for a
  /// smaller one), grouped by the first `prefixLength - 2` hex digits, and their blobs.
  static func subtrees(prefixLength: Int, shards: [IndexTree.Shard]) -> ([IndexTree.Subtree]?, [Data]) {
    guard shards.count > IndexTree.maxDirectShards, prefixLength >= 3 else { return (nil, []) }
    let length = prefixLength - 2
    var groups = [String: [IndexTree.Shard]]()
    for s in shards { groups[String(s.prefix.prefix(length)), default: []].append(s) }
    var refs = [IndexTree.Subtree]()
    var blobs = [Data]()
    for prefix in groups.keys.sorted() {
      let list = groups[prefix]!.sorted { $0.prefix < $1.prefix }
      let blob = JSON.encode(IndexSubtree(format: Format.current, type: "index-subtree", prefix: prefix, shards: list))
      blobs.append(blob)
      refs.append(.init(prefix: prefix, sha256: SHA256.hash(blob), size: blob.count, shards: list.count))
    }
    return (refs, blobs)
  }

  /// The tree blob: the shards directly, or the subtrees that list them.
  static func encode(
    prefixLength: Int, shards: [IndexTree.Shard], subtrees: [IndexTree.Subtree]?, packs: [IndexTree.PackRef]?
  ) -> Data {
    JSON.encode(
      IndexTree(
        format: Format.current, type: "index-tree", prefix_length: prefixLength, shards: subtrees == nil ? shards : [],
        subtrees: subtrees, packs: packs))
  }
}
