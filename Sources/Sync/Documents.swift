import Foundation
import Store

/// Keys and threshold of one role.
public struct RoleKeys: Codable, Hashable, Sendable {
  public var keyids: [String]
  public var threshold: Int
  public init(keyids: [String], threshold: Int) {
    self.keyids = keyids
    self.threshold = threshold
  }
}

/// The root document: which keys may sign for which role, and how many must.
public struct RootPayload: Codable, Hashable, Sendable {
  public var format: Int
  public var type: String
  public var version: Int
  public var expires: String
  public var keys: [String: PublicKey]
  public var roles: [String: RoleKeys]

  public init(version: Int, expires: Date, keys: [PublicKey], roles: [Role: RoleKeys]) {
    format = Format.current
    type = DocumentType.root.rawValue
    self.version = version
    self.expires = Timestamp.format(expires)
    self.keys = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { a, _ in a })
    self.roles = Dictionary(uniqueKeysWithValues: roles.map { ($0.key.rawValue, $0.value) })
  }

  public var expiryDate: Date? { Timestamp.parse(expires) }

  /// Parses and checks the shape: format, type, every role present with a sane threshold.
  public static func parse(_ bytes: Data, what: String) throws -> RootPayload {
    let r = try JSON.decode(RootPayload.self, bytes, what: what)
    try checkFormat(r.format, what)
    guard r.type == DocumentType.root.rawValue else {
      throw TsukuError(.integrity, "\(what) has type '\(r.type)', expected 'root'")
    }
    guard r.expiryDate != nil else { throw TsukuError(.integrity, "\(what) has an invalid expiry '\(r.expires)'") }
    for role in Role.allCases {
      guard let rk = r.roles[role.rawValue] else { throw TsukuError(.integrity, "\(what) has no '\(role.rawValue)' role") }
      if rk.threshold < 1 || rk.threshold > Set(rk.keyids).count {
        throw TsukuError(
          .integrity, "\(what) sets the '\(role.rawValue)' threshold to \(rk.threshold) with \(rk.keyids.count) keys")
      }
    }
    return r
  }
}

/// A `{sha256, size}` pin of one blob.
public struct BlobRef: Codable, Hashable, Sendable {
  public var sha256: ObjectID
  public var size: Int
  public init(sha256: ObjectID, size: Int) {
    self.sha256 = sha256
    self.size = size
  }
  public init(of data: Data) { self.init(sha256: SHA256.hash(data), size: data.count) }
}

/// The signed index section: pins the index tree.
public struct IndexPayload: Codable, Hashable, Sendable {
  public var format: Int
  public var type: String
  public var version: Int
  public var expires: String
  public var published: String
  public var tree: BlobRef
  public var recipes: Int
  public var golden: Int
  /// The lowest revocation list version a client may accept with this index: a source can
  /// then neither strip the revocation section nor serve an older one than the publisher saw.
  public var revocation_version: Int?

  public var expiryDate: Date? { Timestamp.parse(expires) }

  public static func parse(_ bytes: Data, what: String) throws -> IndexPayload {
    let p = try JSON.decode(IndexPayload.self, bytes, what: what)
    try checkFormat(p.format, what)
    guard p.type == DocumentType.index.rawValue else {
      throw TsukuError(.integrity, "\(what) has type '\(p.type)', expected 'index'")
    }
    guard p.expiryDate != nil else { throw TsukuError(.integrity, "\(what) has an invalid expiry '\(p.expires)'") }
    return p
  }
}

/// The signed revocation section: pins the revocation list.
public struct RevocationPayload: Codable, Hashable, Sendable {
  public var format: Int
  public var type: String
  public var version: Int
  public var expires: String
  /// The revocation list blob: every revoked hash and key with reason, time and revoker.
  public var list: BlobRef
  /// The revoked key ids, also here in the signed section so that a client can stop counting
  /// their signatures before it fetches anything.
  public var revoked_keys: [String]

  public init(version: Int, expires: Date, list: BlobRef, revokedKeys: [String]) {
    format = Format.current
    type = DocumentType.revocation.rawValue
    self.version = version
    self.expires = Timestamp.format(expires)
    self.list = list
    revoked_keys = revokedKeys
  }

  public var expiryDate: Date? { Timestamp.parse(expires) }

  public static func parse(_ bytes: Data, what: String) throws -> RevocationPayload {
    let p = try JSON.decode(RevocationPayload.self, bytes, what: what)
    try checkFormat(p.format, what)
    guard p.type == DocumentType.revocation.rawValue else {
      throw TsukuError(.integrity, "\(what) has type '\(p.type)', expected 'revocation'")
    }
    guard p.expiryDate != nil else { throw TsukuError(.integrity, "\(what) has an invalid expiry '\(p.expires)'") }
    return p
  }
}

/// The revocation list blob: hashes and keys that must never be used again.
public struct RevocationList: Codable, Hashable, Sendable {
  /// A revoked blob.
  public struct Hash: Codable, Hashable, Sendable {
    public var sha256: ObjectID
    public var reason: String
    public var revoked_at: String
    /// The key id of the responder who signed the revocation.
    public var by: String
    public init(sha256: ObjectID, reason: String, revokedAt: Date, by: String) {
      self.sha256 = sha256
      self.reason = reason
      revoked_at = Timestamp.format(revokedAt)
      self.by = by
    }
  }
  /// A revoked key: its signatures no longer count.
  public struct Key: Codable, Hashable, Sendable {
    public var keyid: String
    public var reason: String
    public var revoked_at: String
    public var by: String
    public init(keyid: String, reason: String, revokedAt: Date, by: String) {
      self.keyid = keyid
      self.reason = reason
      revoked_at = Timestamp.format(revokedAt)
      self.by = by
    }
  }
  public var format: Int
  public var type: String
  public var hashes: [Hash]
  public var keys: [Key]

  public static let empty = RevocationList(format: Format.current, type: "revocation-list", hashes: [], keys: [])

  public static func parse(_ bytes: Data, what: String) throws -> RevocationList {
    let l = try JSON.decode(RevocationList.self, bytes, what: what)
    try checkFormat(l.format, what)
    guard l.type == "revocation-list" else { throw TsukuError(.integrity, "\(what) has type '\(l.type)'") }
    return l
  }
}

/// `index.json`: the only mutable name. Two independently signed sections and the current
/// root version. Only the sections are signed; the envelope fields are hints checked against
/// them.
public struct IndexFile: Codable, Hashable, Sendable {
  public var format: Int
  public var root_version: Int
  public var index: Envelope
  public var revocation: Envelope?

  public init(rootVersion: Int, index: Envelope, revocation: Envelope?) {
    format = Format.current
    root_version = rootVersion
    self.index = index
    self.revocation = revocation
  }

  public static func parse(_ bytes: Data, what: String) throws -> IndexFile {
    if bytes.count > Limits.indexFile {
      throw TsukuError(.integrity, "\(what) is \(bytes.count) bytes, more than the \(Limits.indexFile) allowed")
    }
    // Read the format first, so a newer layout gets the upgrade message, not a parse error.
    struct Probe: Decodable { var format: Int }
    let probe = try JSON.decode(Probe.self, bytes, what: what)
    try checkFormat(probe.format, what)
    let f = try JSON.decode(IndexFile.self, bytes, what: what)
    if f.root_version < 1 { throw TsukuError(.integrity, "\(what) names root version \(f.root_version)") }
    return f
  }

  public var bytes: Data { JSON.encode(self, pretty: true) + Data("\n".utf8) }
}

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

/// Encoding of signed documents, shared by the CLI and tests.
public enum RootDocuments {
  public static func encode<T: Encodable>(_ v: T) -> Data { JSON.encode(v) }
  /// An envelope as a file: pretty JSON and a final newline.
  public static func encode(_ env: Envelope) -> Data { JSON.encode(env, pretty: true) + Data("\n".utf8) }
}

// glibc declares memmem only under _GNU_SOURCE, which the Glibc module does not set.
@_silgen_name("memmem")
private func findBytes(_ hay: UnsafeRawPointer, _ hayLength: Int, _ needle: UnsafeRawPointer, _ needleLength: Int)
  -> UnsafeMutableRawPointer?
