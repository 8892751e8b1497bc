import Foundation
import Store

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
  /// Who made this version (format.md, "Who published"): signed with the payload, so a client
  /// reads it verified. Absent in versions made before it existed.
  public var published_by: PublishedBy?

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
  /// Who made this version, as in `IndexPayload.published_by`.
  public var published_by: PublishedBy?

  public init(version: Int, expires: Date, list: BlobRef, revokedKeys: [String], publishedBy: PublishedBy? = nil) {
    format = Format.current
    type = DocumentType.revocation.rawValue
    self.version = version
    self.expires = Timestamp.format(expires)
    self.list = list
    revoked_keys = revokedKeys
    published_by = publishedBy
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

  /// The revoked blobs and why: the one map every reader of a revocation list builds.
  public var revokedBlobs: [ObjectID: String] {
    var out = [ObjectID: String]()
    for h in hashes { out[h.sha256] = h.reason }
    return out
  }

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
      throw TsukuError(.integrity, "\(what) is \(bytes.count) bytes, more than the \(Limits.indexFile) allowed", reason: .tooLarge)
    }
    let f: IndexFile
    if let scanned = JSONScan.read(bytes, IndexFile.scan) {
      try checkFormat(scanned.format, what)
      f = scanned
    } else {
      // Read the format first, so a newer layout gets the upgrade message, not a parse error.
      struct Probe: Decodable { var format: Int }
      let probe = try JSON.decodeWithDecoder(Probe.self, bytes, what: what)
      try checkFormat(probe.format, what)
      f = try JSON.decodeWithDecoder(IndexFile.self, bytes, what: what)
    }
    if f.root_version < 1 { throw TsukuError(.integrity, "\(what) names root version \(f.root_version)") }
    return f
  }

  public var bytes: Data { JSON.encode(self, pretty: true) + Data("\n".utf8) }
}
