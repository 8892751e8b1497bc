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
    try revoke(items, reason: reason, keys: keys, in: [store], expiresDays: expiresDays, now: now, stage: stage, warn: warn)
      .payload
  }

  /// What `revoke` over several targets did: the newest revocation section, and whether it
  /// was only copied to lagging targets (everything asked was revoked already).
  public struct Revoked: Sendable {
    public var payload: RevocationPayload
    public var copiedOnly: Bool
  }

  /// `revoke` over every target at once (`RegistryTargets`): the new list is made from the
  /// newest among them and written to all. When the newest list already revokes every item
  /// and some target lags, the newest `index.json` is copied to the lagging targets instead
  /// (finishing an earlier revocation that did not reach them).
  @discardableResult
  public static func revoke(
    _ items: [Revocation], reason: String, keys: [SigningKey], in stores: [any ObjectStore], expiresDays: Int,
    now: Date, stage: String? = nil, warn: (String) -> Void = { _ in }
  ) throws -> Revoked {
    let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty, !trimmed.contains("\n") else {
      throw TsukuError(.usage, "--reason must be one non-empty line")
    }
    let targets = try RegistryTargets(stores)
    let current = try targets.indexToChange(signedBy: keys, as: .revocation)
    let root = try targets.requireRoot()
    var list = RevocationList.empty
    var merged = false
    if let m = try targets.mergedRevocationList() { (list, merged) = m }
    let done = items.allSatisfy { item in
      switch item {
      case .hash(let id): list.hashes.contains { $0.sha256 == id }
      case .key(let keyid): list.keys.contains { $0.keyid == keyid }
      }
    }
    // The same command again after a revocation that reached only some targets: when one
    // target's index.json holds both the newest index and the newest revocation list, it goes
    // to the others (with what it pins) and nothing is signed. When no single index.json
    // holds both (another command moved the index on one store alone), copying either would
    // roll the other back: the list is signed again as the next version instead.
    // Lists that two stores hold with one version are merged (revocations only add up): the
    // merged list is signed as the next version even when it already has every item.
    var renewOnly = done && merged
    if done, !merged, stage == nil, targets.someTargetLags, let payload = targets.revocation {
      if targets.index?.revocation == payload {
        try IndexCommit(message: "revocation list version \(payload.version)").commit(to: targets, now: now)
        return Revoked(payload: payload, copiedOnly: true)
      }
      renewOnly = true
    }
    let by = keys.map { String($0.keyID.prefix(16)) }.joined(separator: ",")
    for item in items where !renewOnly {
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
        for line in noEffect(revoking: keyid, in: root) { warn(line) }
      }
    }
    let blob = JSON.encode(list)
    let payload = RevocationPayload(
      version: (targets.revocation?.version ?? 0) + 1, expires: try IndexCommit.expiry(days: expiresDays, now: now),
      list: BlobRef(of: blob), revokedKeys: list.keys.map(\.keyid), publishedBy: .current())
    let env = try Envelope.sign(type: .revocation, payload: JSON.encode(payload), keys: keys)
    let file = IndexFile(rootVersion: current.file.root_version, index: current.file.index, revocation: env)
    try IndexCommit(
      file: file, objects: [blob], check: .revocationSection, sign: [.revocation],
      message: "revocation list version \(payload.version)"
    ).commitOrStage(to: targets, now: now, stage: stage)
    return Revoked(payload: payload, copiedOnly: false)
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
    try resign(keys: keys, revocationKeys: revocationKeys, in: [store], expiresDays: expiresDays, now: now, stage: stage)
  }

  /// `resign` over every target at once: the next version after the newest among them,
  /// written to all (a lagging target gets the roots and blobs it lacks).
  @discardableResult
  public static func resign(
    keys: [SigningKey], revocationKeys: [SigningKey] = [], in stores: [any ObjectStore], expiresDays: Int, now: Date,
    stage: String? = nil
  ) throws -> IndexPayload {
    let targets = try RegistryTargets(stores)
    let current = try targets.indexToChange(signedBy: keys, as: .index)
    let root = try targets.requireRoot()
    let expires = try IndexCommit.expiry(days: expiresDays, now: now)
    var p = current.index
    p.version += 1
    p.expires = Timestamp.format(expires)
    p.published = Timestamp.format(now)
    p.published_by = .current()
    // The newest revocation section among the targets is carried (or renewed).
    var rev = targets.newestRevocationHolder?.index?.file.revocation ?? current.file.revocation
    var objects = [Data]()
    if let list = try targets.revocationList() { objects.append(list) }
    if !revocationKeys.isEmpty, let r = targets.revocation {
      try IndexCommit.checkSigners(revocationKeys, role: .revocation, root: root)
      let renewed = try IndexCommit.renewed(r, expires: expires, keys: revocationKeys)
      rev = renewed.1
    }
    p.revocation_version = rev.flatMap { $0.payloadBytes }.flatMap { try? RevocationPayload.parse($0, what: "r") }?.version
    let env = try Envelope.sign(type: .index, payload: JSON.encode(p), keys: keys)
    let file = IndexFile(rootVersion: root.version, index: env, revocation: rev)
    try IndexCommit(file: file, objects: objects, message: "re-sign index version \(p.version)").commitOrStage(
      to: targets, now: now, stage: stage)
    return p
  }

  /// Root version N+1 with new keys or thresholds, to be signed by the old root threshold and
  /// the new one. Returns the envelope with the signatures `signers` could make.
  public static func nextRoot(
    from root: TrustedRoot, keys: [Role: [PublicKey]], thresholds: [Role: Int], expiresDays: Int, now: Date,
    signers: [SigningKey]
  ) throws -> Envelope {
    let payload = try nextRootPayload(from: root, keys: keys, thresholds: thresholds, expiresDays: expiresDays, now: now)
    let newIDs = Set(payload.roles[Role.root.rawValue]?.keyids ?? [])
    let oldIDs = Set(root.payload.roles[Role.root.rawValue]?.keyids ?? [])
    for s in signers where !newIDs.contains(s.keyID) && !oldIDs.contains(s.keyID) {
      throw TsukuError(.usage, "key '\(s.keyID.prefix(16))' is neither an old nor a new root key")
    }
    return try Envelope.sign(type: .root, payload: JSON.encode(payload), keys: signers)
  }

  /// The payload of root version N+1: roles not given in `keys` keep their keys, thresholds
  /// not given keep theirs (at most the number of keys).
  public static func nextRootPayload(
    from root: TrustedRoot, keys: [Role: [PublicKey]], thresholds: [Role: Int], expiresDays: Int, now: Date,
    logOrigin: String? = nil
  ) throws -> RootPayload {
    var allKeys = [PublicKey]()
    var roles = [Role: RoleKeys]()
    for role in Role.allCases {
      let list: [PublicKey] =
        keys[role] ?? (root.payload.roles[role.rawValue]?.keyids.compactMap { root.payload.keys[$0] } ?? [])
      let ids = Array(Set(list.map(\.keyID))).sorted()
      // The optional log role: kept when the old root had it, added by new keys.
      if role == .log && ids.isEmpty { continue }
      let t = thresholds[role] ?? min(root.payload.roles[role.rawValue]?.threshold ?? 1, ids.count)
      guard t >= 1, t <= ids.count else {
        throw TsukuError(.usage, "invalid \(role.rawValue) threshold '\(t)' for \(ids.count) keys")
      }
      allKeys += list
      roles[role] = RoleKeys(keyids: ids, threshold: t)
    }
    return RootPayload(
      version: root.version + 1, expires: now.addingTimeInterval(Double(expiresDays) * 86400), keys: allKeys, roles: roles,
      logOrigin: logOrigin ?? root.payload.log_origin ?? LogRole.defaultOrigin(roles[.log]))
  }

  /// Whether two roots give every role the same keys and thresholds.
  public static func sameRoles(_ a: RootPayload, _ b: RootPayload) -> Bool {
    Role.allCases.allSatisfy { role in
      let x = a.roles[role.rawValue]
      let y = b.roles[role.rawValue]
      return Set(x?.keyids ?? []) == Set(y?.keyids ?? []) && x?.threshold == y?.threshold
    } && a.log_origin == b.log_origin
  }

  /// Writes root N+1 (from `nextRoot`, partly signed) to a staged file at `path`, for
  /// `registry sign` to add signatures and `registry publish --staged` to write it.
  public static func stageRoot(_ env: Envelope, head: RegistryHead, to path: String) throws {
    try stageRoot(env, targets: try RegistryTargets([head.store]), to: path)
  }

  /// `stageRoot` against the newest root among `targets` (none: a staged root version 1).
  public static func stageRoot(_ env: Envelope, targets: RegistryTargets, to path: String) throws {
    try IndexCommit(roots: [env], message: "stage").stage(to: targets, path: path)
  }

  /// Writes root N+1 after checking it as a client will (old and new thresholds).
  public static func writeRoot(_ env: Envelope, to store: any ObjectStore) throws -> TrustedRoot {
    try writeRoot(env, to: [store])
  }

  /// `writeRoot` to every target: root N+1 after the newest among them (root version 1 when
  /// none has a root), with the root versions and the newest `index.json` a lagging target lacks.
  public static func writeRoot(_ env: Envelope, to stores: [any ObjectStore]) throws -> TrustedRoot {
    let targets = try RegistryTargets(stores)
    // Run again after it reached only some stores: the newest root is this one; copy it.
    if RootDocuments.encode(env) == targets.roots.last {
      return try catchUp(targets, message: "root version \(targets.roots.count)")
    }
    return try IndexCommit(roots: [env], message: "root version \((targets.root?.version ?? 0) + 1)").commit(
      to: targets, now: Date()
    ).root
  }

  /// Writes root version 1 to every target (none holds a root yet); returns the commit each
  /// git target made, by location. `time` dates those commits (nil: now).
  public static func writeFirstRoot(_ env: Envelope, to targets: RegistryTargets, time: Date?) throws -> [String: String] {
    var commits = [String: String]()
    try IndexCommit(roots: [env], message: "root version 1", time: time).commit(
      to: targets, now: Date(),
      written: { target, report in commits[target.location] = report.commit })
    return commits
  }

  /// Copies the newest state (roots and `index.json`, with the blobs it pins) to the targets
  /// that lack it; signs nothing. Returns the newest root.
  @discardableResult
  public static func catchUp(_ targets: RegistryTargets, message: String) throws -> TrustedRoot {
    try IndexCommit(message: message).commit(to: targets, now: Date()).root
  }
}
