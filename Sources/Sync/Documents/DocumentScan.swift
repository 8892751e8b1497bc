import Foundation
import Store

/// A document `JSONScan` reads without Codable. `JSON.decode` tries the scan first and gives
/// the bytes to JSONDecoder only when the scan does not take them.
protocol JSONScannable {
  static func scan(_ r: inout JSONScan) -> Self?
}

extension JSON {
  /// The scan when it reads the bytes, else the decoder (the same value, or its message).
  static func decode<T: Decodable & JSONScannable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
    if let v = JSONScan.read(data, T.scan) { return v }
    return try decodeWithDecoder(type, data, what: what)
  }
}

extension JSONScan {
  /// `{ "key": value, ... }` read by `field`, which must know every key it takes; unknown
  /// keys are skipped.
  mutating func fields(_ field: (inout JSONScan, String) -> Bool?) -> Bool {
    object { r, key in field(&r, key) ?? r.skip() }
  }

  mutating func scan<T: JSONScannable>(_ type: T.Type) -> T? { T.scan(&self) }
}

extension BlobRef: JSONScannable {
  static func scan(_ r: inout JSONScan) -> BlobRef? {
    var id: ObjectID?, size: Int?
    guard
      r.fields({ r, k in
        switch k {
        case "sha256": once(&id, r.objectID())
        case "size": once(&size, r.int())
        default: nil
        }
      }), let id, let size
    else { return nil }
    return BlobRef(sha256: id, size: size)
  }
}

extension Signature: JSONScannable {
  static func scan(_ r: inout JSONScan) -> Signature? {
    var keyid: String?, sig: String?
    guard
      r.fields({ r, k in
        switch k {
        case "keyid": once(&keyid, r.text())
        case "sig": once(&sig, r.text())
        default: nil
        }
      }), let keyid, let sig
    else { return nil }
    return Signature(keyid: keyid, sig: sig)
  }
}

extension Envelope: JSONScannable {
  static func scan(_ r: inout JSONScan) -> Envelope? {
    var type: DocumentType?, payload: String?, signatures: [Signature]?
    guard
      r.fields({ r, k in
        switch k {
        case "type": once(&type, r.rawValue(DocumentType.self))
        case "payload": once(&payload, r.text())
        case "signatures": once(&signatures, r.array { $0.scan(Signature.self) })
        default: nil
        }
      }), let type, let payload, let signatures
    else { return nil }
    return Envelope(type: type, payload: payload, signatures: signatures)
  }
}

extension PublicKey: JSONScannable {
  static func scan(_ r: inout JSONScan) -> PublicKey? {
    var type: String?, key: String?
    guard
      r.fields({ r, k in
        switch k {
        case "type": once(&type, r.text())
        case "public": once(&key, r.text())
        default: nil
        }
      }), let type, let key
    else { return nil }
    return PublicKey(type: type, public: key)
  }
}

extension RoleKeys: JSONScannable {
  static func scan(_ r: inout JSONScan) -> RoleKeys? {
    var keyids: [String]?, threshold: Int?
    guard
      r.fields({ r, k in
        switch k {
        case "keyids": once(&keyids, r.texts())
        case "threshold": once(&threshold, r.int())
        default: nil
        }
      }), let keyids, let threshold
    else { return nil }
    return RoleKeys(keyids: keyids, threshold: threshold)
  }
}

extension RootPayload: JSONScannable {
  static func scan(_ r: inout JSONScan) -> RootPayload? {
    var format: Int?, type: String?, version: Int?, expires: String?
    var keys: [String: PublicKey]?, roles: [String: RoleKeys]?, origin: String??
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "version": once(&version, r.int())
        case "expires": once(&expires, r.text())
        case "keys": once(&keys, r.dictionary { $0.scan(PublicKey.self) })
        case "roles": once(&roles, r.dictionary { $0.scan(RoleKeys.self) })
        case "log_origin": once(&origin, r.optional { $0.text() })
        default: nil
        }
      }), let format, let type, let version, let expires, let keys, let roles
    else { return nil }
    return RootPayload(
      format: format, type: type, version: version, expires: expires, keys: keys, roles: roles, log_origin: origin ?? nil)
  }

  fileprivate init(
    format: Int, type: String, version: Int, expires: String, keys: [String: PublicKey], roles: [String: RoleKeys],
    log_origin: String?
  ) {
    self.format = format
    self.type = type
    self.version = version
    self.expires = expires
    self.keys = keys
    self.roles = roles
    self.log_origin = log_origin
  }
}

extension TrustState: JSONScannable {
  static func scan(_ r: inout JSONScan) -> TrustState? {
    var format: Int?, indexVersion: Int?, revocationVersion: Int?
    var indexPayload: ObjectID??, revocationPayload: ObjectID??, rootVersion: Int??, logSize: UInt64??, logRoot: String??
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "index_version": once(&indexVersion, r.int())
        case "index_payload_sha256": once(&indexPayload, r.optional { $0.objectID() })
        case "revocation_version": once(&revocationVersion, r.int())
        case "revocation_payload_sha256": once(&revocationPayload, r.optional { $0.objectID() })
        case "root_version": once(&rootVersion, r.optional { $0.int() })
        case "log_size": once(&logSize, r.optional { $0.uint64() })
        case "log_root": once(&logRoot, r.optional { $0.text() })
        default: nil
        }
      }), let format, let indexVersion, let revocationVersion
    else { return nil }
    var s = TrustState()
    s.format = format
    s.index_version = indexVersion
    s.index_payload_sha256 = indexPayload ?? nil
    s.revocation_version = revocationVersion
    s.revocation_payload_sha256 = revocationPayload ?? nil
    s.root_version = rootVersion ?? nil
    s.log_size = logSize ?? nil
    s.log_root = logRoot ?? nil
    return s
  }
}

extension PublishedBy: JSONScannable {
  static func scan(_ r: inout JSONScan) -> PublishedBy? {
    var identity: String??, tool: String?
    guard
      r.fields({ r, k in
        switch k {
        case "identity": once(&identity, r.optional { $0.text() })
        case "tool": once(&tool, r.text())
        default: nil
        }
      }), let tool
    else { return nil }
    return PublishedBy(identity: identity ?? nil, tool: tool)
  }
}

extension IndexPayload: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexPayload? {
    var format: Int?, type: String?, version: Int?, expires: String?, published: String?, tree: BlobRef?
    var recipes: Int?, golden: Int?, revocationVersion: Int??, publishedBy: PublishedBy??
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "version": once(&version, r.int())
        case "expires": once(&expires, r.text())
        case "published": once(&published, r.text())
        case "tree": once(&tree, r.scan(BlobRef.self))
        case "recipes": once(&recipes, r.int())
        case "golden": once(&golden, r.int())
        case "revocation_version": once(&revocationVersion, r.optional { $0.int() })
        case "published_by": once(&publishedBy, r.optional { $0.scan(PublishedBy.self) })
        default: nil
        }
      }), let format, let type, let version, let expires, let published, let tree, let recipes, let golden
    else { return nil }
    return IndexPayload(
      format: format, type: type, version: version, expires: expires, published: published, tree: tree, recipes: recipes,
      golden: golden, revocation_version: revocationVersion ?? nil, published_by: publishedBy ?? nil)
  }
}

extension RevocationPayload: JSONScannable {
  static func scan(_ r: inout JSONScan) -> RevocationPayload? {
    var format: Int?, type: String?, version: Int?, expires: String?, list: BlobRef?, revokedKeys: [String]?
    var publishedBy: PublishedBy??
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "version": once(&version, r.int())
        case "expires": once(&expires, r.text())
        case "list": once(&list, r.scan(BlobRef.self))
        case "revoked_keys": once(&revokedKeys, r.texts())
        case "published_by": once(&publishedBy, r.optional { $0.scan(PublishedBy.self) })
        default: nil
        }
      }), let format, let type, let version, let expires, let list, let revokedKeys
    else { return nil }
    return RevocationPayload(
      format: format, type: type, version: version, expires: expires, list: list, revoked_keys: revokedKeys,
      published_by: publishedBy ?? nil)
  }

  fileprivate init(
    format: Int, type: String, version: Int, expires: String, list: BlobRef, revoked_keys: [String],
    published_by: PublishedBy?
  ) {
    self.format = format
    self.type = type
    self.version = version
    self.expires = expires
    self.list = list
    self.revoked_keys = revoked_keys
    self.published_by = published_by
  }
}

extension RevocationList: JSONScannable {
  static func scan(_ r: inout JSONScan) -> RevocationList? {
    var format: Int?, type: String?, hashes: [Hash]?, keys: [Key]?
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "hashes": once(&hashes, r.array { $0.revokedHash() })
        case "keys": once(&keys, r.array { $0.revokedKey() })
        default: nil
        }
      }), let format, let type, let hashes, let keys
    else { return nil }
    return RevocationList(format: format, type: type, hashes: hashes, keys: keys)
  }
}

extension JSONScan {
  fileprivate mutating func revokedHash() -> RevocationList.Hash? {
    var id: ObjectID?, reason: String?, at: String?, by: String?
    guard
      fields({ r, k in
        switch k {
        case "sha256": once(&id, r.objectID())
        case "reason": once(&reason, r.text())
        case "revoked_at": once(&at, r.text())
        case "by": once(&by, r.text())
        default: nil
        }
      }), let id, let reason, let at, let by
    else { return nil }
    return RevocationList.Hash(sha256: id, reason: reason, revoked_at: at, by: by)
  }

  fileprivate mutating func revokedKey() -> RevocationList.Key? {
    var keyid: String?, reason: String?, at: String?, by: String?
    guard
      fields({ r, k in
        switch k {
        case "keyid": once(&keyid, r.text())
        case "reason": once(&reason, r.text())
        case "revoked_at": once(&at, r.text())
        case "by": once(&by, r.text())
        default: nil
        }
      }), let keyid, let reason, let at, let by
    else { return nil }
    return RevocationList.Key(keyid: keyid, reason: reason, revoked_at: at, by: by)
  }
}

extension RevocationList.Hash {
  fileprivate init(sha256: ObjectID, reason: String, revoked_at: String, by: String) {
    self.sha256 = sha256
    self.reason = reason
    self.revoked_at = revoked_at
    self.by = by
  }
}

extension RevocationList.Key {
  fileprivate init(keyid: String, reason: String, revoked_at: String, by: String) {
    self.keyid = keyid
    self.reason = reason
    self.revoked_at = revoked_at
    self.by = by
  }
}

extension IndexFile: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexFile? {
    var format: Int?, rootVersion: Int?, index: Envelope?, revocation: Envelope??
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "root_version": once(&rootVersion, r.int())
        case "index": once(&index, r.scan(Envelope.self))
        case "revocation": once(&revocation, r.optional { $0.scan(Envelope.self) })
        default: nil
        }
      }), let format, let rootVersion, let index
    else { return nil }
    var f = IndexFile(rootVersion: rootVersion, index: index, revocation: revocation ?? nil)
    f.format = format
    return f
  }
}

extension IndexTree.Shard: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexTree.Shard? {
    var prefix: String?, id: ObjectID?, size: Int?, entries: Int?
    guard
      r.fields({ r, k in
        switch k {
        case "prefix": once(&prefix, r.text())
        case "sha256": once(&id, r.objectID())
        case "size": once(&size, r.int())
        case "entries": once(&entries, r.int())
        default: nil
        }
      }), let prefix, let id, let size, let entries
    else { return nil }
    return IndexTree.Shard(prefix: prefix, sha256: id, size: size, entries: entries)
  }
}

extension IndexTree.Subtree: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexTree.Subtree? {
    var prefix: String?, id: ObjectID?, size: Int?, shards: Int?
    guard
      r.fields({ r, k in
        switch k {
        case "prefix": once(&prefix, r.text())
        case "sha256": once(&id, r.objectID())
        case "size": once(&size, r.int())
        case "shards": once(&shards, r.int())
        default: nil
        }
      }), let prefix, let id, let size, let shards
    else { return nil }
    return IndexTree.Subtree(prefix: prefix, sha256: id, size: size, shards: shards)
  }
}

extension IndexTree.PackRef: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexTree.PackRef? {
    var id: ObjectID?, size: Int?, count: Int?
    guard
      r.fields({ r, k in
        switch k {
        case "sha256": once(&id, r.objectID())
        case "size": once(&size, r.int())
        case "count": once(&count, r.int())
        default: nil
        }
      }), let id, let size, let count
    else { return nil }
    return IndexTree.PackRef(sha256: id, size: size, count: count)
  }
}

extension IndexTree: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexTree? {
    var format: Int?, type: String?, prefixLength: Int?, shards: [Shard]?, subtrees: [Subtree]??, packs: [PackRef]??
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "prefix_length": once(&prefixLength, r.int())
        case "shards": once(&shards, r.array { $0.scan(Shard.self) })
        case "subtrees": once(&subtrees, r.optional { $0.array { $0.scan(Subtree.self) } })
        case "packs": once(&packs, r.optional { $0.array { $0.scan(PackRef.self) } })
        default: nil
        }
      }), let format, let type, let prefixLength, let shards
    else { return nil }
    return IndexTree(
      format: format, type: type, prefix_length: prefixLength, shards: shards, subtrees: subtrees ?? nil, packs: packs ?? nil)
  }
}

extension IndexSubtree: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexSubtree? {
    var format: Int?, type: String?, prefix: String?, shards: [IndexTree.Shard]?
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "prefix": once(&prefix, r.text())
        case "shards": once(&shards, r.array { $0.scan(IndexTree.Shard.self) })
        default: nil
        }
      }), let format, let type, let prefix, let shards
    else { return nil }
    return IndexSubtree(format: format, type: type, prefix: prefix, shards: shards)
  }
}

extension GoldenRef: JSONScannable {
  static func scan(_ r: inout JSONScan) -> GoldenRef? {
    var platform: String?, version: String?, id: ObjectID?, size: Int?
    guard
      r.fields({ r, k in
        switch k {
        case "platform": once(&platform, r.text())
        case "version": once(&version, r.text())
        case "sha256": once(&id, r.objectID())
        case "size": once(&size, r.int())
        default: nil
        }
      }), let platform, let version, let id, let size
    else { return nil }
    return GoldenRef(platform: platform, version: version, sha256: id, size: size)
  }
}

extension IndexEntry: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexEntry? {
    var name: String?, category: Category?, recipe: BlobRef?, golden: [GoldenRef]?, description: String?
    var homepage: String?, type: String?, dependencies: [String]?, runtime: [String]?, commit: String??
    guard
      r.fields({ r, k in
        switch k {
        case "name": once(&name, r.text())
        case "category": once(&category, r.rawValue(Category.self))
        case "recipe": once(&recipe, r.scan(BlobRef.self))
        case "golden": once(&golden, r.array { $0.scan(GoldenRef.self) })
        case "description": once(&description, r.text())
        case "homepage": once(&homepage, r.text())
        case "type": once(&type, r.text())
        case "dependencies": once(&dependencies, r.texts())
        case "runtime_dependencies": once(&runtime, r.texts())
        case "source_commit": once(&commit, r.optional { $0.text() })
        default: nil
        }
      }), let name, let category, let recipe, let golden, let description, let homepage, let type, let dependencies,
      let runtime
    else { return nil }
    return IndexEntry(
      name: name, category: category, recipe: recipe, golden: golden, description: description, homepage: homepage,
      type: type, dependencies: dependencies, runtime_dependencies: runtime, source_commit: commit ?? nil)
  }
}

extension IndexShard: JSONScannable {
  static func scan(_ r: inout JSONScan) -> IndexShard? {
    var format: Int?, type: String?, prefix: String?, entries: [IndexEntry]?
    guard
      r.fields({ r, k in
        switch k {
        case "format": once(&format, r.int())
        case "type": once(&type, r.text())
        case "prefix": once(&prefix, r.text())
        case "entries": once(&entries, r.array { $0.scan(IndexEntry.self) })
        default: nil
        }
      }), let format, let type, let prefix, let entries
    else { return nil }
    return IndexShard(format: format, type: type, prefix: prefix, entries: entries)
  }
}

extension Home.CacheMeta: JSONScannable {
  static func scan(_ r: inout JSONScan) -> Home.CacheMeta? {
    var synced: String?, confirmed: String??, source: String?, version: Int?, etag: String??
    var recipes: Int??, golden: Int??, sha: String??
    guard
      r.fields({ r, k in
        switch k {
        case "synced_at": once(&synced, r.text())
        case "confirmed_at": once(&confirmed, r.optional { $0.text() })
        case "source": once(&source, r.text())
        case "index_version": once(&version, r.int())
        case "etag": once(&etag, r.optional { $0.text() })
        case "recipes": once(&recipes, r.optional { $0.int() })
        case "golden": once(&golden, r.optional { $0.int() })
        case "index_sha256": once(&sha, r.optional { $0.text() })
        default: nil
        }
      }), let synced, let source, let version
    else { return nil }
    return Home.CacheMeta(
      synced_at: synced, confirmed_at: confirmed ?? nil, source: source, index_version: version, etag: etag ?? nil,
      recipes: recipes ?? nil, golden: golden ?? nil, index_sha256: sha ?? nil)
  }
}

/// What the scan and the decoder make of the same bytes, for every document type the scan
/// reads. Used by the tests and by the `scan` fuzz target.
public enum JSONScanCheck {
  /// Per document type: whether the scan reads the bytes, and whether the decoder then reads
  /// the same value.
  private static func results(_ data: Data) -> [(name: String, scanned: Bool, agrees: Bool)] {
    func check<T: Decodable & JSONScannable & Equatable>(_ type: T.Type, _ name: String) -> (String, Bool, Bool) {
      guard let scanned = JSONScan.read(data, T.scan) else { return (name, false, true) }
      return (name, true, (try? JSONDecoder().decode(type, from: data)) == scanned)
    }
    return [
      check(Envelope.self, "envelope"), check(RootPayload.self, "root"), check(TrustState.self, "trust state"),
      check(IndexFile.self, "index.json"), check(IndexPayload.self, "index section"),
      check(RevocationPayload.self, "revocation section"), check(RevocationList.self, "revocation list"),
      check(IndexTree.self, "index tree"), check(IndexSubtree.self, "index subtree"), check(IndexShard.self, "index shard"),
      check(Home.CacheMeta.self, "cache record"),
    ]
  }

  /// The names of the types the scan reads differently from the decoder (a value the decoder
  /// refuses, or another value); empty when they agree.
  public static func disagreements(_ data: Data) -> [String] { results(data).filter { !$0.agrees }.map(\.name) }

  /// How many of the document types the scan reads these bytes as.
  public static func scanned(_ data: Data) -> Int { results(data).filter(\.scanned).count }
}
