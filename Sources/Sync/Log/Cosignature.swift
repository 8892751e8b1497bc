import Foundation
import Store

// C2SP tlog-cosignature v1 with Ed25519 (c2sp.org/tlog-cosignature, signature type 0x04): a
// witness signs "cosignature/v1\ntime <t>\n" followed by the whole checkpoint text, and its
// signature line holds the key hash, the 8-byte big-endian time and the 64-byte signature.
// The signed message does not name the witness, so one key serves one witness name only.

/// A witness key that verifies timestamped cosignatures (type 0x04) of checkpoints.
public struct CosignatureVerifier: Sendable, Hashable {
  public let name: String
  public let keyHash: UInt32
  /// The 32-byte Ed25519 public key.
  public let publicKey: [UInt8]

  /// The signature type byte of Ed25519 cosignatures.
  public static let signatureType: UInt8 = 0x04
  /// Bytes of a cosignature after the key hash: an 8-byte time and a 64-byte signature.
  public static let signatureSize = 8 + Ed25519.signatureSize

  /// A verifier for `ed25519` under `name`; the key hash is the first 4 bytes of
  /// SHA-256(name || 0x0A || 0x04 || key), big-endian.
  public init(name: String, ed25519: [UInt8]) throws {
    guard Note.isValidName(name) else { throw TsukuError(.usage, "invalid witness name '\(name)'") }
    guard ed25519.count == Ed25519.publicKeySize else {
      throw TsukuError(.usage, "witness key '\(name)' has \(ed25519.count) bytes, expected \(Ed25519.publicKeySize)")
    }
    self.name = name
    publicKey = ed25519
    keyHash = Note.keyHash(name: name, type: Self.signatureType, key: ed25519)
  }

  /// Parses a witness verifier key "name+hexhash+base64(0x04 || key)".
  public init(vkey: String) throws {
    let (name, key) = try Note.parseVKey(vkey, type: Self.signatureType)
    try self.init(name: name, ed25519: key)
  }

  /// The verifier key: "name+hexhash+base64(0x04 || key)".
  public var vkey: String { Note.vkey(name: name, keyHash: keyHash, type: Self.signatureType, key: publicKey) }

  /// True when `sig` is this witness's (name and hash), holds a time below 2^63, and its
  /// signature verifies over the cosigned message of `checkpointText`.
  public func verifies(_ sig: NoteSignature, checkpointText: String) -> Bool {
    guard sig.name == name, sig.keyHash == keyHash,
      let (time, signature) = Self.split(sig.signature)
    else { return false }
    let message = Self.message(checkpointText: checkpointText, time: time)
    return Ed25519.verify(signature, of: message, publicKey: publicKey)
  }

  /// The time a signature of this witness claims, or nil when it is not this witness's or not
  /// a well-formed cosignature. The time is not verified here: see `verifies`.
  public func timestamp(of sig: NoteSignature) -> UInt64? {
    guard sig.name == name, sig.keyHash == keyHash else { return nil }
    return Self.split(sig.signature)?.time
  }

  /// The time and Ed25519 signature of cosignature bytes, or nil when they are not 72 bytes
  /// or the time is 2^63 or more.
  public static func split(_ bytes: [UInt8]) -> (time: UInt64, signature: [UInt8])? {
    guard bytes.count == signatureSize else { return nil }
    let time = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    guard time < 1 << 63 else { return nil }
    return (time, Array(bytes[8...]))
  }

  /// "cosignature/v1\ntime <t>\n" followed by the checkpoint text.
  public static func message(checkpointText: String, time: UInt64) -> [UInt8] {
    Array("cosignature/v1\ntime \(time)\n".utf8) + Array(checkpointText.utf8)
  }
}

/// A witness's signing key: cosigns checkpoint texts at a given time.
public struct CosignatureSigner: Sendable {
  public let verifier: CosignatureVerifier
  let key: SigningKey

  public init(name: String, key: SigningKey) throws {
    guard let pub = key.publicKey.ed25519 else {
      throw TsukuError(.usage, "witness key '\(name)' is not an Ed25519 key")
    }
    verifier = try CosignatureVerifier(name: name, ed25519: pub)
    self.key = key
  }

  /// The cosignature line of `checkpointText` at `time` (seconds since the epoch, below 2^63).
  public func cosign(checkpointText: String, time: UInt64) throws -> NoteSignature {
    guard checkpointText.hasSuffix("\n") else { throw TsukuError(.usage, "a checkpoint text must end in a newline") }
    guard time < 1 << 63 else { throw TsukuError(.usage, "cosignature time \(time) is 2^63 or more") }
    let sig = try key.sign(CosignatureVerifier.message(checkpointText: checkpointText, time: time))
    var bytes: [UInt8] = []
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(time >> UInt64(shift) & 0xff)) }
    return NoteSignature(name: verifier.name, keyHash: verifier.keyHash, signature: bytes + sig)
  }
}

extension SignedNote {
  /// The named witnesses with at least one valid cosignature of this note's text; a witness
  /// counts once however many lines it has, and a line that does not verify counts for nothing.
  public func verifiedCosigners(_ witnesses: [CosignatureVerifier]) -> Set<CosignatureVerifier> {
    var out: Set<CosignatureVerifier> = []
    for w in witnesses where !out.contains(w) {
      if signatures.contains(where: { w.verifies($0, checkpointText: text) }) { out.insert(w) }
    }
    return out
  }
}
