import Foundation
import Store

// The C2SP signed-note format (c2sp.org/signed-note), whose reference implementation is Go's
// golang.org/x/mod/sumdb/note: a text ending in a newline, a blank line, then one or more lines
// "— <key name> base64(4-byte key ID || signature)". Ed25519 signatures (type 0x01) are the
// log's; timestamped cosignatures (type 0x04) are in Cosignature.swift. No I/O here.

/// One signature line of a signed note: the key name, the 4-byte key ID (big-endian) and the
/// signature bytes that follow it. Lines from unknown keys are kept as they are, so a note can
/// be passed on (and cosigned) without losing anyone else's signature.
public struct NoteSignature: Sendable, Hashable {
  public var name: String
  public var keyHash: UInt32
  /// The bytes after the 4-byte key hash.
  public var signature: [UInt8]

  public init(name: String, keyHash: UInt32, signature: [UInt8]) {
    self.name = name
    self.keyHash = keyHash
    self.signature = signature
  }

  /// The text after the em dash and name: base64 of the key hash and signature bytes.
  public var base64: String {
    Data(Note.bigEndian(keyHash) + signature).base64EncodedString()
  }
}

/// A signed note: its text (ending in a newline) and its signature lines, in the order they
/// appear. `parse` checks the syntax only; which keys signed it is `verifiedSigners`.
public struct SignedNote: Sendable, Hashable {
  /// The note text, ending in "\n", without the blank separator line.
  public var text: String
  public var signatures: [NoteSignature]

  /// The most bytes a note may have: a checkpoint with many cosignatures is a few KiB.
  public static let maxBytes = 64 * 1024
  /// The most signature lines a note may have (the spec asks for at least 16; Go allows 100).
  public static let maxSignatures = 100

  public init(text: String, signatures: [NoteSignature]) {
    self.text = text
    self.signatures = signatures
  }

  /// Parses a signed note. Anything malformed is refused (integrity): more than `maxBytes` or
  /// `maxSignatures`, invalid UTF-8, a control character other than newline, no blank line
  /// before the signatures, no signature, a line that is not "— name base64", a key name with a
  /// space or a plus, base64 that does not decode or holds fewer than 5 bytes. Repeated
  /// identical lines are kept once.
  public static func parse(_ bytes: [UInt8]) throws -> SignedNote {
    guard bytes.count <= maxBytes else {
      throw malformed("of \(bytes.count) bytes, more than the limit of \(maxBytes)", reason: .tooLarge)
    }
    guard let whole = String(bytes: bytes, encoding: .utf8) else { throw malformed("that is not valid UTF-8") }
    for s in whole.unicodeScalars where s.value < 0x20 && s != "\n" {
      throw malformed("with the control character U+\(String(format: "%04X", s.value))")
    }
    // The text ends at the last blank line: everything after it is signature lines.
    guard let split = lastBlankLine(bytes) else { throw malformed("without a blank line before its signatures") }
    let text = String(decoding: bytes[..<(split + 1)], as: UTF8.self)
    let sigBytes = bytes[(split + 2)...]
    guard let last = sigBytes.last, last == 0x0A else { throw malformed("without a signature line ending in a newline") }
    var signatures: [NoteSignature] = []
    var seen: Set<NoteSignature> = []
    for line in sigBytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false) {
      let sig = try parseLine(String(decoding: line, as: UTF8.self))
      guard seen.insert(sig).inserted else { continue }
      guard signatures.count < maxSignatures else {
        throw malformed("with more than \(maxSignatures) signatures", reason: .tooLarge)
      }
      signatures.append(sig)
    }
    return SignedNote(text: text, signatures: signatures)
  }

  /// The note as bytes: text, a blank line, one line per signature.
  public func serialized() -> [UInt8] {
    var out = Array(text.utf8)
    out.append(0x0A)
    for sig in signatures { out += Array("— \(sig.name) \(sig.base64)\n".utf8) }
    return out
  }

  /// This note with `signature` added, replacing any signature with the same name and key hash
  /// (a signer that signs again replaces its own line, as Go's `note.Sign` does).
  public func adding(_ signature: NoteSignature) -> SignedNote {
    var copy = self
    copy.signatures.removeAll { $0.name == signature.name && $0.keyHash == signature.keyHash }
    copy.signatures.append(signature)
    return copy
  }

  static func parseLine(_ line: String) throws -> NoteSignature {
    guard line.hasPrefix("— ") else { throw malformed("with the line '\(line.prefix(80))' where a signature was expected") }
    let rest = line.dropFirst(2)
    guard let space = rest.firstIndex(of: " ") else { throw malformed("with a signature line without a signature") }
    let name = String(rest[..<space])
    let b64 = String(rest[rest.index(after: space)...])
    guard Note.isValidName(name) else { throw malformed("with the invalid key name '\(name.prefix(80))'") }
    guard !b64.isEmpty, let raw = Data(base64Encoded: b64), raw.count >= 5 else {
      throw malformed("whose signature by '\(name)' is not base64 of at least 5 bytes")
    }
    let bytes = [UInt8](raw)
    return NoteSignature(name: name, keyHash: Note.uint32(bytes[0..<4]), signature: Array(bytes[4...]))
  }

  static func malformed(_ what: String, reason: TsukuError.Reason = .malformed) -> TsukuError {
    TsukuError(.integrity, "malformed signed note: a note \(what)", reason: reason)
  }

  private static func lastBlankLine(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 2 else { return nil }
    var i = bytes.count - 2
    while i >= 0 {
      if bytes[i] == 0x0A && bytes[i + 1] == 0x0A { return i }
      i -= 1
    }
    return nil
  }
}

extension SignedNote {
  /// The known keys with at least one valid signature in this note. A signature whose name
  /// and key hash match no known key is ignored, as the spec requires; a key counts once
  /// however many lines it has.
  public func verifiedSigners(_ verifiers: [NoteVerifier]) -> Set<NoteVerifier> {
    var out: Set<NoteVerifier> = []
    for v in verifiers where !out.contains(v) {
      if signatures.contains(where: { v.verifies($0, text: text) }) { out.insert(v) }
    }
    return out
  }

  /// The signatures whose name and key hash match a known key but which do not verify: a
  /// reader may refuse the whole note for them (the spec's SHOULD), or report them.
  public func invalidSignatures(_ verifiers: [NoteVerifier]) -> [NoteSignature] {
    signatures.filter { sig in
      verifiers.contains { $0.name == sig.name && $0.keyHash == sig.keyHash }
        && !verifiers.contains { $0.verifies(sig, text: text) }
    }
  }
}

/// A key that verifies Ed25519 note signatures (type 0x01), known by name and key hash.
public struct NoteVerifier: Sendable, Hashable {
  public let name: String
  public let keyHash: UInt32
  /// The 32-byte Ed25519 public key.
  public let publicKey: [UInt8]

  /// The signature type byte of Ed25519 note signatures.
  public static let signatureType: UInt8 = 0x01

  /// A verifier for `publicKey` under `name`; the key hash is the first 4 bytes of
  /// SHA-256(name || 0x0A || 0x01 || key), big-endian.
  public init(name: String, ed25519 publicKey: [UInt8]) throws {
    guard Note.isValidName(name) else { throw TsukuError(.usage, "invalid note key name '\(name)'") }
    guard publicKey.count == Ed25519.publicKeySize else {
      throw TsukuError(.usage, "note key '\(name)' has \(publicKey.count) bytes, expected \(Ed25519.publicKeySize)")
    }
    self.name = name
    self.publicKey = publicKey
    keyHash = Note.keyHash(name: name, type: Self.signatureType, key: publicKey)
  }

  /// Parses a verifier key "name+hexhash+base64(0x01 || key)"; the hash must match the key.
  public init(vkey: String) throws {
    let (name, key) = try Note.parseVKey(vkey, type: Self.signatureType)
    try self.init(name: name, ed25519: key)
  }

  /// The verifier key: "name+hexhash+base64(0x01 || key)".
  public var vkey: String { Note.vkey(name: name, keyHash: keyHash, type: Self.signatureType, key: publicKey) }

  /// True when `sig` is this key's (name and hash) and a valid Ed25519 signature of `text`.
  public func verifies(_ sig: NoteSignature, text: String) -> Bool {
    sig.name == name && sig.keyHash == keyHash
      && Ed25519.verify(sig.signature, of: Array(text.utf8), publicKey: publicKey)
  }
}

/// Signs note texts with an Ed25519 key (type 0x01): a key file, an environment variable or an
/// external signer alike.
public struct NoteSigner: Sendable {
  public let verifier: NoteVerifier
  let key: SigningKey

  public init(name: String, key: SigningKey) throws {
    guard let pub = key.publicKey.ed25519 else {
      throw TsukuError(.usage, "note key '\(name)' is not an Ed25519 key")
    }
    verifier = try NoteVerifier(name: name, ed25519: pub)
    self.key = key
  }

  /// The signature line of `text` (which must end in a newline).
  public func sign(_ text: String) throws -> NoteSignature {
    guard text.hasSuffix("\n") else { throw TsukuError(.usage, "a note text must end in a newline") }
    let sig = try key.sign(Array(text.utf8))
    return NoteSignature(name: verifier.name, keyHash: verifier.keyHash, signature: sig)
  }
}

/// Helpers shared by the note and cosignature formats.
enum Note {
  /// A key name is non-empty and holds no Unicode space and no plus.
  static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && !name.unicodeScalars.contains { $0.properties.isWhitespace || $0 == "+" }
      && !name.unicodeScalars.contains { $0.value < 0x20 }
  }

  /// SHA-256(name || 0x0A || type || key)[:4] as a big-endian integer.
  static func keyHash(name: String, type: UInt8, key: [UInt8]) -> UInt32 {
    uint32(SHA256.hash(Array(name.utf8) + [0x0A, type] + key).bytes[0..<4])
  }

  static func vkey(name: String, keyHash: UInt32, type: UInt8, key: [UInt8]) -> String {
    "\(name)+\(String(format: "%08x", keyHash))+\(Data([type] + key).base64EncodedString())"
  }

  /// Splits a vkey of signature type `type`, checking its name, hash and key length.
  static func parseVKey(_ vkey: String, type: UInt8) throws -> (name: String, key: [UInt8]) {
    // Split at the first two pluses only: the base64 key may hold more (as Go's NewVerifier).
    let parts = vkey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
    func bad(_ why: String) -> TsukuError {
      TsukuError(.usage, "invalid verifier key '\(vkey.prefix(120))': \(why)")
    }
    guard parts.count == 3 else { throw bad("expected name+hash+key") }
    let name = String(parts[0])
    let hex = parts[1]
    guard isValidName(name) else { throw bad("invalid key name") }
    guard hex.count == 8, hex.allSatisfy({ $0.isHexDigit }), let hash = UInt32(hex, radix: 16) else {
      throw bad("the key hash is not 8 hex digits")
    }
    guard let raw = Data(base64Encoded: String(parts[2])), raw.count == 1 + Ed25519.publicKeySize else {
      throw bad("the key is not base64 of a type byte and \(Ed25519.publicKeySize) key bytes")
    }
    let bytes = [UInt8](raw)
    guard bytes[0] == type else {
      throw bad("signature type 0x\(String(format: "%02x", bytes[0])), expected 0x\(String(format: "%02x", type))")
    }
    let key = Array(bytes[1...])
    guard keyHash(name: name, type: type, key: key) == hash else { throw bad("the key hash does not match the key") }
    return (name, key)
  }

  static func uint32(_ b: ArraySlice<UInt8>) -> UInt32 {
    b.reduce(0) { $0 << 8 | UInt32($1) }
  }

  static func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
  }
}
