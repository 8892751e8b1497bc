import Foundation
import Store

/// One golden file of a recipe.
public struct GoldenRef: Codable, Hashable, Sendable {
  public var platform: String
  public var version: String
  public var sha256: ObjectID
  public var size: Int
}

/// Whether a recipe belongs to the critical set (embedded, never evicted) or the community.
public enum Category: String, Codable, Sendable {
  case critical, community
}

/// One recipe in the index, with everything list, search and info need.
public struct IndexEntry: Codable, Hashable, Sendable {
  public var name: String
  public var category: Category
  public var recipe: BlobRef
  public var golden: [GoldenRef]
  public var description: String
  public var homepage: String
  public var type: String
  public var dependencies: [String]
  public var runtime_dependencies: [String]
  public var source_commit: String?
}

/// One shard of the index: the entries whose name hashes to its prefix.
public struct IndexShard: Codable, Hashable, Sendable {
  public var format: Int
  public var type: String
  public var prefix: String
  public var entries: [IndexEntry]

  public static func parse(_ bytes: Data, what: String) throws -> IndexShard {
    let s = try JSON.decode(IndexShard.self, bytes, what: what)
    try checkFormat(s.format, what)
    guard s.type == "index-shard" else { throw TsukuError(.integrity, "\(what) has type '\(s.type)'") }
    return s
  }
}

/// The recipe references of a shard and nothing else: what `tsuku verify` needs from each of
/// thousands of shards, decoded without building the rest of every entry.
public struct ShardRecipes: Decodable, Sendable {
  public struct Entry: Decodable, Sendable { public var recipe: BlobRef }
  public var format: Int
  public var type: String
  public var entries: [Entry]

  /// The recipe references of a shard of `expected` entries. A shard is compact JSON with
  /// sorted keys, in which `"recipe":{"sha256":"` can only be structure (a quote inside a
  /// string is escaped), so a scan finds them; anything unexpected (another count, a bad
  /// digit) falls back to the full decoder.
  public static func parse(_ bytes: Data, expected: Int, what: String) throws -> [BlobRef] {
    if let refs = scan(bytes), refs.count == expected { return refs }
    return try parse(bytes, what: what)
  }

  static func scan(_ bytes: Data) -> [BlobRef]? {
    let key = Array(#""recipe":{"sha256":""#.utf8)
    let mid = Array(#"","size":"#.utf8)
    return bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> [BlobRef]? in
      var out = [BlobRef]()
      var i = 0
      let n = b.count
      while i + key.count + 64 + mid.count < n {
        guard let at = findBytes(b.baseAddress! + i, n - i, key, key.count) else { break }
        let start = b.baseAddress!.distance(to: at) + key.count
        guard let id = ObjectID(hexUTF8: UnsafeRawBufferPointer(rebasing: b[start..<(start + 64)])) else { return nil }
        var j = start + 64
        for c in mid {
          guard j < n, b[j] == c else { return nil }
          j += 1
        }
        var size = 0
        var digits = 0
        while j < n, b[j] >= 48, b[j] <= 57, digits < 12 {
          size = size * 10 + Int(b[j] - 48)
          j += 1
          digits += 1
        }
        guard digits > 0, j < n, b[j] == UInt8(ascii: "}") else { return nil }
        out.append(BlobRef(sha256: id, size: size))
        i = j
      }
      return out
    }
  }

  public static func parse(_ bytes: Data, what: String) throws -> [BlobRef] {
    let s = try JSON.decode(ShardRecipes.self, bytes, what: what)
    try checkFormat(s.format, what)
    guard s.type == "index-shard" else { throw TsukuError(.integrity, "\(what) has type '\(s.type)'") }
    return s.entries.map(\.recipe)
  }
}
