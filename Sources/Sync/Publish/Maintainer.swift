import Foundation
import Store

/// The state of a registry a maintainer changes: its newest root and its current index.
public struct RegistryHead: Sendable {
  public let store: any ObjectStore
  public let root: TrustedRoot
  public let index: VerifiedIndex?

  /// Reads and verifies (signatures, not freshness) what `store` holds now.
  public init(_ store: any ObjectStore) throws {
    self.store = store
    root = try Publisher.currentRoot(of: store)
    index = try Publisher.currentIndex(of: store, root: root)
  }

  public var precondition: StoreChange.Precondition {
    index.map { .indexHash(SHA256.hash($0.bytes)) } ?? .indexAbsent
  }

  func requireIndex() throws -> VerifiedIndex {
    guard let index else {
      throw TsukuError(.usage, "'\(store.location)' has no index.json yet; publish one first")
    }
    return index
  }
}

/// Security responders' and maintainers' changes to trust: revocation, re-signing, root
/// rotation. Each writes one `index.json` (and any new blob or root) as one atomic change.
public enum Maintainer {
  /// What to revoke.
  public enum Revocation: Sendable {
    case hash(ObjectID)
    case key(String)
  }

  /// Publishes a new revocation list that adds `items`, signed by revocation keys. The index
  /// section of `index.json` is carried over byte for byte: no index key is needed.
  @discardableResult
  public static func revoke(
    _ items: [Revocation], reason: String, keys: [SigningKey], in store: any ObjectStore, expiresDays: Int, now: Date,
    stage: String? = nil
  ) throws -> RevocationPayload {
    let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty, !trimmed.contains("\n") else {
      throw TsukuError(.usage, "--reason must be one non-empty line")
    }
    let head = try RegistryHead(store)
    let current = try head.requireIndex()
    try checkSigners(keys, role: .revocation, root: head.root)
    var list = RevocationList.empty
    if let r = current.revocation {
      list = try RevocationList.parse(try store.get(r.list.sha256, maxSize: r.list.size), what: "revocation list")
    }
    let by = keys.map { String($0.keyID.prefix(16)) }.joined(separator: ",")
    for item in items {
      switch item {
      case .hash(let id):
        if list.hashes.contains(where: { $0.sha256 == id }) {
          throw TsukuError(.usage, "'\(id.hex)' is already revoked")
        }
        list.hashes.append(.init(sha256: id, reason: trimmed, revokedAt: now, by: by))
      case .key(let keyid):
        // Any key id may be revoked, also one a rotation already removed from the root: a
        // client that has not walked to the new root yet must stop trusting it too.
        guard ObjectID(hex: keyid) != nil else {
          throw TsukuError(.usage, "invalid key id '\(keyid.prefix(80))': expected 64 lowercase hex digits")
        }
        if list.keys.contains(where: { $0.keyid == keyid }) { throw TsukuError(.usage, "key '\(keyid)' is already revoked") }
        list.keys.append(.init(keyid: keyid, reason: trimmed, revokedAt: now, by: by))
      }
    }
    let blob = JSON.encode(list)
    let payload = RevocationPayload(
      version: (current.revocation?.version ?? 0) + 1, expires: try expiry(expiresDays, now), list: BlobRef(of: blob),
      revokedKeys: list.keys.map(\.keyid))
    let env = try Envelope.sign(type: .revocation, payload: JSON.encode(payload), keys: keys)
    let file = IndexFile(rootVersion: current.file.root_version, index: current.file.index, revocation: env)
    try write(
      file, objects: [blob], head: head, now: now, message: "revocation list version \(payload.version)", stage: stage,
      sign: [.revocation])
    return payload
  }

  /// A new index version with the same content and a new expiry (the scheduled job that keeps
  /// a registry from expiring). With revocation keys, the revocation list is re-signed too.
  @discardableResult
  public static func resign(
    keys: [SigningKey], revocationKeys: [SigningKey] = [], in store: any ObjectStore, expiresDays: Int, now: Date,
    stage: String? = nil
  ) throws -> IndexPayload {
    let head = try RegistryHead(store)
    let current = try head.requireIndex()
    try checkSigners(keys, role: .index, root: head.root)
    var p = current.index
    p.version += 1
    p.expires = Timestamp.format(try expiry(expiresDays, now))
    p.published = Timestamp.format(now)
    var rev = current.file.revocation
    if !revocationKeys.isEmpty, var r = current.revocation {
      try checkSigners(revocationKeys, role: .revocation, root: head.root)
      r.version += 1
      r.expires = Timestamp.format(try expiry(expiresDays, now))
      rev = try Envelope.sign(type: .revocation, payload: JSON.encode(r), keys: revocationKeys)
      p.revocation_version = r.version
    }
    let env = try Envelope.sign(type: .index, payload: JSON.encode(p), keys: keys)
    let file = IndexFile(rootVersion: head.root.version, index: env, revocation: rev)
    try write(file, objects: [], head: head, now: now, message: "re-sign index version \(p.version)", stage: stage)
    return p
  }

  /// Root version N+1 with new keys or thresholds, to be signed by the old root threshold and
  /// the new one. Returns the envelope with the signatures `signers` could make.
  public static func nextRoot(
    from root: TrustedRoot, keys: [Role: [PublicKey]], thresholds: [Role: Int], expiresDays: Int, now: Date,
    signers: [SigningKey]
  ) throws -> Envelope {
    var allKeys = [PublicKey]()
    var roles = [Role: RoleKeys]()
    for role in Role.allCases {
      let list: [PublicKey] =
        keys[role] ?? (root.payload.roles[role.rawValue]?.keyids.compactMap { root.payload.keys[$0] } ?? [])
      let ids = Array(Set(list.map(\.keyID))).sorted()
      let t = thresholds[role] ?? min(root.payload.roles[role.rawValue]?.threshold ?? 1, ids.count)
      guard t >= 1, t <= ids.count else {
        throw TsukuError(.usage, "invalid \(role.rawValue) threshold '\(t)' for \(ids.count) keys")
      }
      allKeys += list
      roles[role] = RoleKeys(keyids: ids, threshold: t)
    }
    let payload = RootPayload(
      version: root.version + 1, expires: now.addingTimeInterval(Double(expiresDays) * 86400), keys: allKeys, roles: roles)
    let newIDs = Set(roles[.root]!.keyids)
    let oldIDs = Set(root.payload.roles[Role.root.rawValue]?.keyids ?? [])
    for s in signers where !newIDs.contains(s.keyID) && !oldIDs.contains(s.keyID) {
      throw TsukuError(.usage, "key '\(s.keyID.prefix(16))' is neither an old nor a new root key")
    }
    return try Envelope.sign(type: .root, payload: JSON.encode(payload), keys: signers)
  }

  /// Writes root N+1 after checking it as a client will (old and new thresholds).
  public static func writeRoot(_ env: Envelope, to store: any ObjectStore) throws -> TrustedRoot {
    let head = try RegistryHead(store)
    let bytes = RootDocuments.encode(env)
    let next = try head.root.next(bytes, what: "the new root")
    try store.apply(StoreChange(documents: [(.root(next.version), bytes)], message: "root version \(next.version)"))
    return next
  }

  static func expiry(_ days: Int, _ now: Date) throws -> Date {
    guard (1...3650).contains(days) else {
      throw TsukuError(.usage, "invalid --expires-days '\(days)': expected 1 to 3650")
    }
    return now.addingTimeInterval(Double(days) * 86400)
  }

  static func checkSigners(_ keys: [SigningKey], role: Role, root: TrustedRoot) throws {
    let ids = root.payload.roles[role.rawValue]?.keyids ?? []
    for k in keys where !ids.contains(k.keyID) {
      throw TsukuError(.usage, "key '\(k.keyID.prefix(16))' is not \(role == .index ? "an" : "a") \(role.rawValue) key of root version \(root.version)")
    }
  }

  /// Verifies `file` exactly as a client will, then writes it (with `objects`) atomically.
  static func write(
    _ file: IndexFile, objects: [Data], head: RegistryHead, now: Date, message: String, stage: String? = nil,
    sign: [DocumentType] = [.index]
  ) throws {
    if let stage {
      if !objects.isEmpty { try head.store.apply(StoreChange(objects: objects, message: "stage")) }
      try Staged(base: head.index.map { SHA256.hash($0.bytes) }, index: file, sign: sign).write(to: stage)
      return
    }
    let bytes = file.bytes
    if sign == [.revocation], let env = file.revocation {
      // A responder may revoke the very key that signed the current index: then only the
      // revocation section can (and must) verify.
      _ = try env.verify(as: .revocation, role: .revocation, root: head.root.payload, what: "the new revocation list")
    } else {
      _ = try IndexVerifier.verify(bytes, root: head.root, state: TrustState(), now: now, source: "the new index")
    }
    // A new index version is archived too (`index/<N>.index.json`, for retention); a revocation
    // keeps the index version, whose archive copy already exists.
    var documents = [(DocumentName.index, bytes)]
    if let raw = file.index.payloadBytes, let v = try? IndexPayload.parse(raw, what: "the new index").version,
      v != head.index?.index.version
    {
      documents.insert((.archivedIndex(v), bytes), at: 0)
    }
    try head.store.apply(
      StoreChange(objects: objects, documents: documents, precondition: head.precondition, message: message))
  }
}
