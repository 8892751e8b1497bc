import Foundation
import Store

/// The walk from an index tree down to its shards and their entries: the one place that reads
/// subtrees and parses shards. It reads through the caller's `read`, which returns verified
/// bytes (from the cache, a source, or either), and names what it reads as `names` says, so
/// every use keeps the wording of its messages.
public struct IndexWalk {
  /// How the walk names a shard: to the reader, and in a parse error.
  public struct Names {
    public var read: (IndexTree.Shard) -> String
    public var parse: (IndexTree.Shard) -> String
    public init(read: @escaping (IndexTree.Shard) -> String, parse: @escaping (IndexTree.Shard) -> String) {
      self.read = read
      self.parse = parse
    }

    /// `index shard '4'`, with `suffix` (say ` from 'url'`) added in parse errors.
    public static func shard(suffix: String = "") -> Names {
      Names(read: { "index shard '\($0.prefix)'" }, parse: { "index shard '\($0.prefix)'\(suffix)" })
    }

    /// One name for everything (`cache`).
    public static func all(_ name: String) -> Names { Names(read: { _ in name }, parse: { _ in name }) }
  }

  public let tree: IndexTree
  private let read: IndexTree.Fetch
  private let names: Names

  public init(_ tree: IndexTree, names: Names = .shard(), read: @escaping IndexTree.Fetch) {
    self.tree = tree
    self.names = names
    self.read = read
  }

  /// Every shard, reading every subtree.
  public func shards() throws -> [IndexTree.Shard] { try tree.allShards(fetch: read) }

  /// The shard that holds `name`, if any: reads at most one subtree.
  public func shard(for name: String) throws -> IndexTree.Shard? { try tree.shard(for: name, fetch: read) }

  /// The entries of one shard, read and parsed.
  public func entries(of s: IndexTree.Shard) throws -> [IndexEntry] {
    try entries(of: s, bytes: try read(s.ref, names.read(s)))
  }

  /// The entries of one shard whose bytes were read already (in a batch).
  public func entries(of s: IndexTree.Shard, bytes: Data) throws -> [IndexEntry] {
    try IndexShard.parse(bytes, what: names.parse(s)).entries
  }

  /// The entries of `shards` (every shard when nil), one shard at a time, in shard order.
  public func forEachShard(
    _ shards: [IndexTree.Shard]? = nil, _ body: (IndexTree.Shard, [IndexEntry]) throws -> Void
  ) throws {
    for s in try shards ?? self.shards() { try body(s, try entries(of: s)) }
  }

  /// The entries of `shards` with their names, categories, types and blob references only
  /// (descriptions, homepages and dependency lists empty, never decoded), in shard order:
  /// read in order, decoded on every core some shards at a time.
  public func keptEntries(_ shards: [IndexTree.Shard]) throws -> [IndexEntry] {
    var entries = [IndexEntry]()
    for start in stride(from: 0, to: shards.count, by: 256) {
      let group = Array(shards[start..<min(start + 256, shards.count)])
      let bytes = try group.map { try read($0.ref, names.read($0)) }
      let whats = group.map(names.parse)
      let decoded = try ParallelMap.map(group.count) { i in try KeptShard.parse(bytes[i], what: whats[i]) }
      for shard in decoded {
        entries += shard.entries.map { e in
          IndexEntry(
            name: e.name, category: e.category, recipe: e.recipe, golden: e.golden, description: "", homepage: "",
            type: e.type, dependencies: [], runtime_dependencies: [], source_commit: nil)
        }
      }
    }
    return entries
  }

  /// Every entry, in shard order.
  public func entries() throws -> [IndexEntry] {
    var out = [IndexEntry]()
    try forEachShard { out += $1 }
    return out
  }
}
