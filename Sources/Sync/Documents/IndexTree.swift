import Foundation
import Store

/// The index tree: the shards, keyed by the leading hex digits of the SHA-256 of a name.
///
/// A tree of up to 256 shards lists them itself. A bigger one (prefix length 3 or more, from
/// about 16,000 recipes) lists *subtrees* instead, each an `index-subtree` blob listing the
/// shards under a shorter prefix, so a lookup reads one small tree, one small subtree and one
/// shard however large the registry grows.
public struct IndexTree: Codable, Hashable, Sendable {
  public struct Shard: Codable, Hashable, Sendable {
    public var prefix: String
    public var sha256: ObjectID
    public var size: Int
    public var entries: Int
    public var ref: BlobRef { BlobRef(sha256: sha256, size: size) }
  }
  /// A blob listing the shards whose prefixes start with `prefix`.
  public struct Subtree: Codable, Hashable, Sendable {
    public var prefix: String
    public var sha256: ObjectID
    public var size: Int
    public var shards: Int
    public var ref: BlobRef { BlobRef(sha256: sha256, size: size) }
  }
  /// A pack holding many of the blobs below this tree (see `Pack`), for cold syncs.
  public struct PackRef: Codable, Hashable, Sendable {
    public var sha256: ObjectID
    public var size: Int
    public var count: Int
    public init(sha256: ObjectID, size: Int, count: Int) {
      self.sha256 = sha256
      self.size = size
      self.count = count
    }
  }
  public var format: Int
  public var type: String
  public var prefix_length: Int
  /// Every shard (a tree without subtrees), or none (a tree with subtrees).
  public var shards: [Shard]
  /// The subtrees of a large tree, sorted by prefix; absent for a tree that lists its shards.
  public var subtrees: [Subtree]?
  /// Packs covering the shards, the revocation list and the recipes and golden files;
  /// absent when the publisher made none.
  public var packs: [PackRef]?

  /// Trees with more shards than this list subtrees.
  public static let maxDirectShards = 256

  public static func parse(_ bytes: Data, what: String) throws -> IndexTree {
    let t = try JSON.decode(IndexTree.self, bytes, what: what)
    try checkFormat(t.format, what)
    guard t.type == "index-tree" else { throw TsukuError(.integrity, "\(what) has type '\(t.type)'") }
    guard (1...4).contains(t.prefix_length) else {
      throw TsukuError(.integrity, "\(what) has prefix length \(t.prefix_length)")
    }
    if let subs = t.subtrees {
      guard t.shards.isEmpty else { throw TsukuError(.integrity, "\(what) lists both shards and subtrees") }
      let length = subs.first?.prefix.count ?? 0
      for s in subs where s.prefix.count != length || length >= t.prefix_length || !isHex(s.prefix) {
        throw TsukuError(.integrity, "\(what) has a subtree with prefix '\(s.prefix.prefix(8))'")
      }
    }
    return t
  }

  static func isHex(_ s: String) -> Bool { s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } }

  /// The shard prefix of a recipe name.
  public static func prefix(of name: String, length: Int) -> String {
    String(SHA256.hash(name).hex.prefix(length))
  }

  /// Reads a subtree blob (verified by the caller's fetch against the reference).
  public typealias Fetch = (_ ref: BlobRef, _ what: String) throws -> Data

  /// The shard that holds `name`, if any: reads at most one subtree.
  public func shard(for name: String, fetch: Fetch) throws -> Shard? {
    let p = IndexTree.prefix(of: name, length: prefix_length)
    guard let subs = subtrees else { return IndexTree.find(p, in: shards) }
    guard let length = subs.first?.prefix.count, let sub = subs.first(where: { $0.prefix == p.prefix(length) }) else {
      return nil
    }
    return IndexTree.find(p, in: try subtree(sub, fetch: fetch).shards)
  }

  /// Every shard, reading every subtree.
  public func allShards(fetch: Fetch) throws -> [Shard] {
    guard let subs = subtrees else { return shards }
    var out = [Shard]()
    out.reserveCapacity(subs.reduce(0) { $0 + $1.shards })
    for s in subs { out += try subtree(s, fetch: fetch).shards }
    return out
  }

  /// The subtree blobs this tree names (none for a tree that lists its shards).
  public var subtreeRefs: [BlobRef] { (subtrees ?? []).map(\.ref) }

  /// One subtree, checked to hold only shards under its prefix at the tree's prefix length.
  public func subtree(_ s: Subtree, fetch: Fetch) throws -> IndexSubtree {
    let what = "index subtree '\(s.prefix)'"
    let sub = try IndexSubtree.parse(try fetch(s.ref, what), what: what)
    guard sub.prefix == s.prefix else { throw TsukuError(.integrity, "\(what) says its prefix is '\(sub.prefix.prefix(8))'") }
    for sh in sub.shards where sh.prefix.count != prefix_length || !sh.prefix.hasPrefix(s.prefix) {
      throw TsukuError(.integrity, "\(what) lists a shard with prefix '\(sh.prefix.prefix(8))'")
    }
    return sub
  }

  private static func find(_ prefix: String, in list: [Shard]) -> Shard? {
    var lo = 0
    var hi = list.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if list[mid].prefix < prefix { lo = mid + 1 } else { hi = mid }
    }
    if lo < list.count, list[lo].prefix == prefix { return list[lo] }
    return list.first { $0.prefix == prefix }
  }
}

/// A subtree of a large index tree: the shards under one prefix.
public struct IndexSubtree: Codable, Hashable, Sendable {
  public var format: Int
  public var type: String
  public var prefix: String
  public var shards: [IndexTree.Shard]

  public static func parse(_ bytes: Data, what: String) throws -> IndexSubtree {
    let s = try JSON.decode(IndexSubtree.self, bytes, what: what)
    try checkFormat(s.format, what)
    guard s.type == "index-subtree" else { throw TsukuError(.integrity, "\(what) has type '\(s.type)'") }
    return s
  }
}
