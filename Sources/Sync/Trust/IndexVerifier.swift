import Foundation
import Store

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
