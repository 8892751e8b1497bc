import Foundation
import Store

/// Security responders' and maintainers' changes to trust: revocation, re-signing, root
/// rotation. Each writes one `index.json` (and any new blob or root) as one atomic change.
public enum Maintainer {
  /// What to revoke.
  public enum Revocation: Sendable {
    case hash(ObjectID)
    case key(String)
  }

  /// Publishes a new revocation list that adds `items`, signed by revocation keys. The index
  /// section of `index.json` is carried over byte for byte: no index key is needed. Revoking a
  /// key of the newest root's root or revocation role is done, with a line to `warn`: clients
  /// check revoked keys against index signatures only, so such a key keeps signing (a revoked
  /// revocation key can still sign a newer list); only a root rotation removes it.
  @discardableResult
  public static func revoke(
    _ items: [Revocation], reason: String, keys: [SigningKey], in store: any ObjectStore, expiresDays: Int, now: Date,
    stage: String? = nil, warn: (String) -> Void = { _ in }
  ) throws -> RevocationPayload {
    let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty, !trimmed.contains("\n") else {
      throw TsukuError(.usage, "--reason must be one non-empty line")
    }
    let head = try RegistryHead(store)
    let current = try head.indexToChange(signedBy: keys, as: .revocation)
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
        for line in noEffect(revoking: keyid, in: head.root) { warn(line) }
      }
    }
    let blob = JSON.encode(list)
    let payload = RevocationPayload(
      version: (current.revocation?.version ?? 0) + 1, expires: try IndexCommit.expiry(days: expiresDays, now: now),
      list: BlobRef(of: blob), revokedKeys: list.keys.map(\.keyid))
    let env = try Envelope.sign(type: .revocation, payload: JSON.encode(payload), keys: keys)
    let file = IndexFile(rootVersion: current.file.root_version, index: current.file.index, revocation: env)
    try IndexCommit(
      file: file, objects: [blob], check: .revocationSection, sign: [.revocation],
      message: "revocation list version \(payload.version)"
    ).commitOrStage(to: head, now: now, stage: stage)
    return payload
  }

  /// What revoking `keyid` does not do: one line per role of `root` (root, revocation) whose
  /// signatures clients never check against the revocation list.
  static func noEffect(revoking keyid: String, in root: TrustedRoot) -> [String] {
    let uses = [
      (Role.revocation, "sign a newer revocation list, one without this entry"), (Role.root, "sign a new root"),
    ]
    return uses.compactMap { role, act in
      guard root.payload.roles[role.rawValue]?.keyids.contains(keyid) == true else { return nil }
      return "key '\(keyid)' is a \(role.rawValue) key of root version \(root.version): revoking it does not stop it "
        + "from being used to \(act) (clients check revoked keys against index signatures only); only a root "
        + "rotation removes it: 'tsuku registry rotate-root --\(role.rawValue)-key NEW.pub'"
    }
  }

  /// A new index version with the same content and a new expiry (the scheduled job that keeps
  /// a registry from expiring). With revocation keys, the revocation list is re-signed too.
  @discardableResult
  public static func resign(
    keys: [SigningKey], revocationKeys: [SigningKey] = [], in store: any ObjectStore, expiresDays: Int, now: Date,
    stage: String? = nil
  ) throws -> IndexPayload {
    let head = try RegistryHead(store)
    let current = try head.indexToChange(signedBy: keys, as: .index)
    let expires = try IndexCommit.expiry(days: expiresDays, now: now)
    var p = current.index
    p.version += 1
    p.expires = Timestamp.format(expires)
    p.published = Timestamp.format(now)
    var rev = current.file.revocation
    if !revocationKeys.isEmpty, let r = current.revocation {
      try IndexCommit.checkSigners(revocationKeys, role: .revocation, root: head.root)
      let renewed = try IndexCommit.renewed(r, expires: expires, keys: revocationKeys)
      rev = renewed.1
      p.revocation_version = renewed.0.version
    }
    let env = try Envelope.sign(type: .index, payload: JSON.encode(p), keys: keys)
    let file = IndexFile(rootVersion: head.root.version, index: env, revocation: rev)
    try IndexCommit(file: file, message: "re-sign index version \(p.version)").commitOrStage(
      to: head, now: now, stage: stage)
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

  /// Writes root N+1 (from `nextRoot`, partly signed) to a staged file at `path`, for
  /// `registry sign` to add signatures and `registry publish --staged` to write it.
  public static func stageRoot(_ env: Envelope, head: RegistryHead, to path: String) throws {
    try IndexCommit(roots: [env], message: "stage").stage(to: [head], path: path)
  }

  /// Writes root N+1 after checking it as a client will (old and new thresholds).
  public static func writeRoot(_ env: Envelope, to store: any ObjectStore) throws -> TrustedRoot {
    let head = try RegistryHead(store)
    return try IndexCommit(roots: [env], message: "root version \(head.root.version + 1)").commit(
      to: [head], now: Date()
    ).root
  }
}
