import Foundation
import Store

/// A root that verified: its exact envelope bytes and its payload.
public struct TrustedRoot: Sendable, Equatable {
  public let bytes: Data
  public let payload: RootPayload
  public var version: Int { payload.version }

  /// Loads a root from an envelope's bytes, checking that its own root threshold signed it.
  /// This is how a trust anchor from a file (or built into the binary) is checked for damage;
  /// it is trusted because the user chose the file, not because it signs itself.
  public init(anchor bytes: Data, what: String) throws {
    if bytes.count > Limits.root {
      throw TsukuError(.integrity, "\(what) is \(bytes.count) bytes, more than the \(Limits.root) allowed", reason: .tooLarge)
    }
    let env = try JSON.decode(Envelope.self, bytes, what: what)
    guard env.type == .root, let raw = env.payloadBytes else {
      throw TsukuError(.integrity, "\(what) is a '\(env.type.rawValue)' document where a 'root' document belongs")
    }
    let payload = try RootPayload.parse(raw, what: what)
    _ = try env.verify(as: .root, role: .root, root: payload, what: what)
    self.bytes = bytes
    self.payload = payload
  }

  /// Reads a root file chosen by the user (`--root FILE`).
  public static func read(_ path: String) throws -> TrustedRoot {
    guard let bytes = FileManager.default.contents(atPath: path) else {
      throw TsukuError(.usage, "cannot read root file '\(path)'")
    }
    return try TrustedRoot(anchor: bytes, what: "root file '\(path)'")
  }

  private init(bytes: Data, payload: RootPayload) {
    self.bytes = bytes
    self.payload = payload
  }

  /// Verifies root version `version + 1`: signed by this root's threshold and by its own.
  public func next(_ bytes: Data, what: String) throws -> TrustedRoot {
    if bytes.count > Limits.root {
      throw TsukuError(.integrity, "\(what) is \(bytes.count) bytes, more than the \(Limits.root) allowed", reason: .tooLarge)
    }
    let env = try JSON.decode(Envelope.self, bytes, what: what)
    guard env.type == .root, let raw = env.payloadBytes else {
      throw TsukuError(.integrity, "\(what) is a '\(env.type.rawValue)' document where a 'root' document belongs")
    }
    let new = try RootPayload.parse(raw, what: what)
    guard new.version == version + 1 else {
      throw TsukuError(.integrity, "\(what) has version \(new.version), expected \(version + 1)")
    }
    _ = try env.verify(as: .root, role: .root, root: payload, what: "\(what) (old keys)")
    _ = try env.verify(as: .root, role: .root, root: new, what: "\(what) (new keys)")
    return TrustedRoot(bytes: bytes, payload: new)
  }

  /// Walks the chain one version at a time up to `target`; an expired intermediate root is
  /// fine, only the final one is judged for expiry (by the caller, against its clock reading).
  public func walk(to target: Int, fetch: (Int) throws -> Data?, source: String) throws -> (TrustedRoot, [Data]) {
    if target < version {
      throw TsukuError(
        .integrity, "index.json from '\(source)' names root version \(target), older than the trusted \(version)",
        reason: .rollback)
    }
    if target - version > Limits.maxRootRotations {
      throw TsukuError(
        .integrity,
        "index.json from '\(source)' names root version \(target), more than \(Limits.maxRootRotations) rotations past the trusted \(version)"
      )
    }
    var cur = self
    var chain = [Data]()
    while cur.version < target {
      let v = cur.version + 1
      guard let bytes = try fetch(v) else {
        throw TsukuError(.integrity, "root version \(v) is missing from '\(source)'")
      }
      cur = try cur.next(bytes, what: "root/\(v).root.json from '\(source)'")
      chain.append(bytes)
    }
    return (cur, chain)
  }

  /// Refuses a root whose expiry has passed.
  public func checkNotExpired(now: Date) throws {
    if let exp = payload.expiryDate, exp <= now {
      throw TsukuError(
        .integrity, "root version \(version) expired at \(payload.expires); the registry must publish a new root",
        reason: .expired)
    }
  }
}

/// What a client has trusted so far. Kept outside the cache, so clearing the cache never
/// rolls trust back.
public struct TrustState: Codable, Equatable, Sendable {
  public var format = Format.current
  public var index_version = 0
  public var index_payload_sha256: ObjectID?
  public var revocation_version = 0
  public var revocation_payload_sha256: ObjectID?
  /// The root version these versions were reached under; when the saved root is newer (a
  /// crash between the two writes of a rotation), the versions are reset as the walk would.
  public var root_version: Int?
  public init() {}
}

/// An `index.json` whose sections verified.
public struct VerifiedIndex: Sendable, Equatable {
  public let file: IndexFile
  public let bytes: Data
  public let index: IndexPayload
  public let indexHash: ObjectID
  public let revocation: RevocationPayload?
  public let revocationHash: ObjectID?

  /// The trust state after accepting this index.
  public func advancing(_ s: TrustState) -> TrustState {
    var n = s
    n.index_version = index.version
    n.index_payload_sha256 = indexHash
    if let r = revocation, let h = revocationHash {
      n.revocation_version = r.version
      n.revocation_payload_sha256 = h
    }
    return n
  }
}

/// The checks every `index.json` passes before anything it names is used.
public enum IndexVerifier {
  /// Verifies `bytes` (an `index.json`) against `root` and the trusted `state` at `now`:
  /// format, each section's type and signatures, expiry, and that no version went down
  /// (nor came back with other bytes).
  /// `ignoringRevokedKeys` is for maintainers reading their own store: after a responder
  /// revokes the key that signed the current index, they must still be able to replace it.
  public static func verify(
    _ bytes: Data, root: TrustedRoot, state: TrustState, now: Date, source: String, ignoringRevokedKeys: Bool = false
  ) throws -> VerifiedIndex {
    let what = "index.json from '\(source)'"
    let file = try IndexFile.parse(bytes, what: what)
    if file.root_version != root.version {
      throw TsukuError(
        .integrity, "\(what) names root version \(file.root_version) but root version \(root.version) is trusted")
    }
    try root.checkNotExpired(now: now)

    var rev: RevocationPayload?
    var revHash: ObjectID?
    if let env = file.revocation {
      let raw = try env.verify(
        as: .revocation, role: .revocation, root: root.payload, what: "revocation section of \(what)")
      let r = try RevocationPayload.parse(raw, what: "revocation section of \(what)")
      let h = SHA256.hash(raw)
      try checkFreshness(
        "\(what) has revocation list version \(r.version)", version: r.version, hash: h,
        trusted: state.revocation_version, trustedHash: state.revocation_payload_sha256, expiry: r.expiryDate,
        expires: r.expires, now: now)
      rev = r
      revHash = h
    } else if state.revocation_version > 0 {
      throw TsukuError(
        .integrity,
        "\(what) has no revocation list but version \(state.revocation_version) is trusted: rollback refused",
        reason: .rollback)
    }
    // The revocation section first: keys it revokes no longer count for the index section.
    let raw = try file.index.verify(
      as: .index, role: .index, root: root.payload, what: "index section of \(what)",
      revokedKeys: ignoringRevokedKeys ? [] : Set(rev?.revoked_keys ?? []))
    let index = try IndexPayload.parse(raw, what: "index section of \(what)")
    let indexHash = SHA256.hash(raw)
    try checkFreshness(
      "\(what) has index version \(index.version)", version: index.version, hash: indexHash,
      trusted: state.index_version, trustedHash: state.index_payload_sha256, expiry: index.expiryDate,
      expires: index.expires, now: now)
    if let minimum = index.revocation_version, minimum > 0, (rev?.version ?? 0) < minimum {
      throw TsukuError(
        .integrity,
        "\(what) has \(rev.map { "revocation list version \($0.version)" } ?? "no revocation list") but its signed index requires version \(minimum) or later: refused",
        reason: .rollback)
    }

    return VerifiedIndex(
      file: file, bytes: bytes, index: index, indexHash: indexHash, revocation: rev, revocationHash: revHash)
  }

  /// The checks both signed sections pass: the version never goes down, the same version never
  /// comes back with other bytes, and it has not expired.
  private static func checkFreshness(
    _ subject: String, version: Int, hash: ObjectID, trusted: Int, trustedHash: ObjectID?, expiry: Date?,
    expires: String, now: Date
  ) throws {
    if version < trusted {
      throw TsukuError(.integrity, "\(subject), older than the trusted version \(trusted): rollback refused", reason: .rollback)
    }
    if version == trusted, let t = trustedHash, t != hash {
      throw TsukuError(.integrity, "\(subject) with other content than the trusted one: refused", reason: .rollback)
    }
    if let exp = expiry, exp <= now {
      throw TsukuError(.integrity, "\(subject), which expired at \(expires)", reason: .expired)
    }
  }
}
