import Foundation
import Store

/// The signing roles of a registry. `log` (the transparency log's checkpoint keys) is
/// optional: a root without it has no log, and parses as before.
public enum Role: String, Codable, Sendable, CaseIterable {
  case root, index, revocation, log

  /// The roles every root must have.
  public static let required: [Role] = [.root, .index, .revocation]
}

/// The kinds of signed document. The kind is part of the signed bytes, so a document of one
/// kind can never stand in for another even when the same key signs both.
public enum DocumentType: String, Codable, Sendable {
  case root, index, revocation
}

/// One signature in an envelope.
public struct Signature: Codable, Hashable, Sendable {
  public var keyid: String
  /// 64 bytes, base64.
  public var sig: String
}

/// A signed document: the payload's exact bytes (base64, so they survive any re-encoding of
/// the envelope) and the signatures over them. What is signed is the pre-authentication
/// encoding `"tsuku-sig-v1\n" + type + "\n" + byte count + "\n" + payload`.
public struct Envelope: Codable, Hashable, Sendable {
  public var type: DocumentType
  public var payload: String
  public var signatures: [Signature]

  /// The payload bytes, or nil if the base64 is malformed.
  public var payloadBytes: Data? { Data(base64Encoded: payload) }

  public static func signingInput(type: DocumentType, payload: Data) -> [UInt8] {
    Array("tsuku-sig-v1\n\(type.rawValue)\n\(payload.count)\n".utf8) + [UInt8](payload)
  }

  /// Signs a payload with each key (a key given twice signs once).
  public static func sign(type: DocumentType, payload: Data, keys: [SigningKey]) throws -> Envelope {
    var env = Envelope(type: type, payload: payload.base64EncodedString(), signatures: [])
    try env.addSignatures(keys)
    return env
  }

  /// Adds signatures; a key that already signed is skipped.
  public mutating func addSignatures(_ keys: [SigningKey]) throws {
    guard let bytes = payloadBytes else { throw TsukuError(.integrity, "\(type.rawValue) envelope payload is not base64") }
    let input = Envelope.signingInput(type: type, payload: bytes)
    for key in keys where !signatures.contains(where: { $0.keyid == key.keyID }) {
      signatures.append(Signature(keyid: key.keyID, sig: Data(try key.sign(input)).base64EncodedString()))
    }
  }

  /// The distinct key ids, among `role`'s keys in `root`, whose signatures verify. Unknown
  /// keys, keys of an unknown type, malformed and bad signatures simply do not count.
  public func validSigners(role: Role, root: RootPayload, revokedKeys: Set<String> = []) -> Set<String> {
    guard let bytes = payloadBytes, let r = root.roles[role.rawValue] else { return [] }
    let input = Envelope.signingInput(type: type, payload: bytes)
    var valid = Set<String>()
    for s in signatures where !valid.contains(s.keyid) && r.keyids.contains(s.keyid) && !revokedKeys.contains(s.keyid) {
      guard let key = root.keys[s.keyid], let raw = key.ed25519, key.keyID == s.keyid,
        let sig = Data(base64Encoded: s.sig)
      else { continue }
      if Ed25519.verify([UInt8](sig), of: input, publicKey: raw) { valid.insert(s.keyid) }
    }
    return valid
  }

  /// Checks the envelope's type and that `role`'s threshold of `root` signed it; returns the
  /// payload bytes.
  public func verify(
    as expected: DocumentType, role: Role, root: RootPayload, what: String, revokedKeys: Set<String> = []
  ) throws -> Data {
    guard type == expected else {
      throw TsukuError(.integrity, "\(what) is a '\(type.rawValue)' document where a '\(expected.rawValue)' document belongs")
    }
    guard let bytes = payloadBytes else { throw TsukuError(.integrity, "\(what) has a payload that is not base64") }
    let threshold = root.roles[role.rawValue]?.threshold ?? Int.max
    let n = validSigners(role: role, root: root, revokedKeys: revokedKeys).count
    if n < threshold {
      let why = signatures.isEmpty ? "it is unsigned" : "\(n) valid signature\(n == 1 ? "" : "s") of \(threshold) required"
      throw TsukuError(
        .integrity, "\(what) is not signed by the \(role.rawValue) keys of root version \(root.version): \(why)",
        reason: .badSignature)
    }
    return bytes
  }
}

/// Refuses a document whose format this build does not understand.
func checkFormat(_ format: Int, _ what: String) throws {
  if format != Format.current {
    throw TsukuError(
      .integrity,
      "\(what) has format version \(format), this tsuku understands format \(Format.current): upgrade tsuku to read this registry"
    )
  }
}
