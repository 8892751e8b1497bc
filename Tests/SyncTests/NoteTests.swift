import Foundation
import Store
import Testing

@testable import Sync

/// Known answers and malformed input for the signed-note and cosignature formats.
@Suite struct NoteTests {
  // Source: golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen).
  static let peterVKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
  static let peterSKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
  static let enochVKey = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
  static let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
  static let peterSig =
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
  static let enochSig =
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

  /// The seed inside Go's private key encoding: base64(0x01 || seed) after the hash.
  static func peterKey() throws -> SigningKey {
    let b64 = peterSKey.split(separator: "+").dropFirst(4).joined(separator: "+")
    let raw = [UInt8](Data(base64Encoded: b64)!)
    #expect(raw[0] == 0x01)
    return try SigningKey(seed: Array(raw[1...]))
  }

  static func note(_ s: String) throws -> SignedNote { try SignedNote.parse(Array(s.utf8)) }

  @Test func goVerifierKeyParsesAndItsHashIsDerivedFromNameAndKey() throws {
    let v = try NoteVerifier(vkey: Self.peterVKey)
    #expect(v.name == "PeterNeumann")
    #expect(v.keyHash == 0xc74f_20a3)
    #expect(v.vkey == Self.peterVKey)
    // The hash is recomputed from the name and key, not taken from the string.
    #expect(try NoteVerifier(name: "PeterNeumann", ed25519: v.publicKey).keyHash == 0xc74f_20a3)
    #expect(try NoteVerifier(vkey: Self.enochVKey).keyHash == 0xaf0c_fe78)
    // The private key of the same test derives the same public key.
    #expect(try NoteSigner(name: "PeterNeumann", key: Self.peterKey()).verifier == v)
  }

  @Test func everyManglingOfAVerifierKeyIsRefused() throws {
    // As Go's TestNewVerifier: every proper substring and every one-byte increment.
    let b = Array(Self.peterVKey.utf8)
    for i in 0...b.count {
      for j in (i + 1)..<(b.count + 1) where !(i == 0 && j == b.count) {
        #expect(throws: TsukuError.self) { try NoteVerifier(vkey: String(decoding: b[i..<j], as: UTF8.self)) }
      }
    }
    for i in b.indices {
      var m = b
      m[i] &+= 1
      #expect(throws: TsukuError.self) { try NoteVerifier(vkey: String(decoding: m, as: UTF8.self)) }
    }
    // Source: Go's TestNewVerifier: a wrong key length and an unknown algorithm, each with a
    // hash adjusted to match.
    #expect(throws: TsukuError.self) {
      try NoteVerifier(vkey: "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    }
    #expect(throws: TsukuError.self) {
      try NoteVerifier(vkey: "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    }
    // The base64 key may hold pluses: only the first two split the vkey.
    var withPlus = 0
    for seed in UInt8(0)..<64 {
      let v = try NoteVerifier(name: "k", ed25519: try Ed25519.publicKey(seed: [UInt8](repeating: seed, count: 32)))
      let w = try CosignatureVerifier(name: "k", ed25519: v.publicKey)
      #expect(try NoteVerifier(vkey: v.vkey) == v)
      #expect(try CosignatureVerifier(vkey: w.vkey) == w)
      if v.vkey.split(separator: "+").count > 3 { withPlus += 1 }
    }
    #expect(withPlus > 0)
    // A note key is not a witness key, nor the reverse: the type byte differs.
    #expect(throws: TsukuError.self) { try CosignatureVerifier(vkey: Self.peterVKey) }
  }

  @Test func goSignatureOfTheKnownTextIsReproducedByteForByte() throws {
    let signer = try NoteSigner(name: "PeterNeumann", key: Self.peterKey())
    let sig = try signer.sign(Self.text)
    let note = SignedNote(text: Self.text, signatures: [sig])
    #expect(String(decoding: note.serialized(), as: UTF8.self) == Self.text + "\n" + Self.peterSig)
    // Signing again replaces the line rather than adding a second one (Go's note.Sign).
    let bad = NoteSignature(name: "PeterNeumann", keyHash: 0xc74f_20a3, signature: [1, 2, 3])
    #expect(SignedNote(text: Self.text, signatures: [bad]).adding(sig) == note)
    #expect(throws: TsukuError.self) { try signer.sign("abc") }
  }

  @Test func goNoteWithTwoSignaturesParsesAndVerifiesPerKey() throws {
    let peter = try NoteVerifier(vkey: Self.peterVKey)
    let enoch = try NoteVerifier(vkey: Self.enochVKey)
    let n = try Self.note(Self.text + "\n" + Self.peterSig + Self.enochSig)
    #expect(n.text == Self.text)
    #expect(n.signatures.map(\.name) == ["PeterNeumann", "EnochRoot"])
    #expect(n.signatures[1].keyHash == 0xaf0c_fe78)
    #expect(n.verifiedSigners([peter]) == [peter])
    #expect(n.verifiedSigners([peter, enoch]) == [peter, enoch])
    #expect(n.verifiedSigners([]).isEmpty)
    #expect(n.serialized() == Array((Self.text + "\n" + Self.peterSig + Self.enochSig).utf8))
  }

  @Test func c2spExampleNoteVerifiesUnderItsVerifierKey() throws {
    // Source: C2SP signed-note.md, "Example".
    let v = try NoteVerifier(vkey: "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
    let n = try Self.note(
      "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
    )
    #expect(n.verifiedSigners([v]) == [v])
  }

  @Test func malformedNotesAreRefused() throws {
    // Source: Go's TestOpen "Invalid encoded message syntax", plus bounds of our own.
    let bad = [
      Self.text,
      Self.text + "\n",
      Self.text + "\n" + Self.peterSig.dropLast(),
      "\u{01}" + Self.text + "\n" + Self.peterSig,
      Self.text + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
      Self.text + "\n" + Self.peterSig + "Unexpected line.\n",
      Self.text + "\n" + "— a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
      Self.text + "\n" + "— PeterNeumann x08go/ZJ!!!!\n",
      Self.text + "\n" + "— PeterNeumann AAAA\n",
      Self.text + "\n" + "— PeterNeumann \n",
      Self.text + "\n" + "— PeterNeumann\n",
    ]
    for s in bad {
      #expect(throws: TsukuError.self, "\(s)") { try Self.note(s) }
    }
    // Invalid UTF-8.
    #expect(throws: TsukuError.self) { try SignedNote.parse([0xff] + Array((Self.text + "\n" + Self.peterSig).utf8)) }
    // More than the signature limit (Go's: 101 copies of one line is too many; ours counts
    // distinct lines, so 101 distinct ones).
    var many = Self.text + "\n"
    for i in 0...SignedNote.maxSignatures { many += "— w\(i) AAAAAAA=\n" }
    do {
      _ = try Self.note(many)
      Issue.record("parsed \(SignedNote.maxSignatures + 1) signatures")
    } catch let e as TsukuError {
      #expect(e.code == .integrity && e.reason == .tooLarge)
    }
    // More than the byte limit.
    let huge = String(repeating: "x", count: SignedNote.maxBytes) + "\n\n" + Self.peterSig
    #expect(throws: TsukuError.self) { try Self.note(huge) }
  }

  @Test func unknownAndRepeatedSignaturesAreKeptOnceAndCountOnce() throws {
    let peter = try NoteVerifier(vkey: Self.peterVKey)
    // Source: Go's TestOpen "Duplicated verified and unverified signatures".
    let enochABCD = String(Self.enochSig.prefix(60)) + "ABCD" + String(Self.enochSig.dropFirst(60))
    let n = try Self.note(Self.text + "\n" + Self.peterSig + Self.peterSig + Self.enochSig + Self.enochSig + enochABCD)
    #expect(n.signatures.map(\.name) == ["PeterNeumann", "EnochRoot", "EnochRoot"])
    #expect(n.verifiedSigners([peter]) == [peter])
    // A line with Peter's name and hash that does not verify is reported, not counted.
    let peterABCD = String(Self.peterSig.prefix(60)) + "ABCD" + String(Self.peterSig.dropFirst(60))
    let forged = try Self.note(Self.text + "\n" + peterABCD)
    #expect(forged.verifiedSigners([peter]).isEmpty)
    #expect(forged.invalidSignatures([peter]).count == 1)
    // A signature with the right name and another hash, or the reverse, is ignored.
    let renamed = try Self.note(Self.text + "\n" + Self.peterSig.replacingOccurrences(of: "PeterNeumann", with: "Carmen"))
    #expect(renamed.verifiedSigners([peter]).isEmpty && renamed.invalidSignatures([peter]).isEmpty)
  }

  @Test func c2spCosignatureLineCarriesItsTimeAfterTheKeyHash() throws {
    // Source: C2SP tlog-cosignature.md, the example checkpoint, whose cosigned message shows
    // "time 1679315147".
    let line = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    let n = try Self.note(
      "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        + "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
        + line)
    let w = n.signatures[1]
    #expect(w.name == "witness.example.com/w1" && w.keyHash == 0x8d66_cf3f)
    #expect(CosignatureVerifier.split(w.signature)?.time == 1_679_315_147)
    // The message layout of the same section.
    #expect(
      CosignatureVerifier.message(checkpointText: "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", time: 1_679_315_147)
        == Array("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n".utf8))
  }

  @Test func cosignaturesVerifyOnlyForTheirTextKeyAndType() throws {
    let key = try Self.peterKey()
    let signer = try CosignatureSigner(name: "witness.example/w1", key: key)
    let v = signer.verifier
    // Type 0x04 gives another key hash than type 0x01 for the same name and key.
    #expect(v.keyHash != (try NoteVerifier(name: "witness.example/w1", ed25519: v.publicKey)).keyHash)
    #expect(try CosignatureVerifier(vkey: v.vkey) == v)
    let text = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    let sig = try signer.cosign(checkpointText: text, time: 1_700_000_000)
    #expect(sig.signature.count == 72)
    #expect(v.timestamp(of: sig) == 1_700_000_000)
    #expect(v.verifies(sig, checkpointText: text))
    #expect(!v.verifies(sig, checkpointText: text.replacingOccurrences(of: "\n5\n", with: "\n6\n")))
    // Another time in the line breaks the signature.
    var moved = sig
    moved.signature[7] ^= 1
    #expect(!v.verifies(moved, checkpointText: text))
    // A note signature by the same key is not a cosignature.
    let plain = try NoteSigner(name: "witness.example/w1", key: key).sign(text)
    #expect(!v.verifies(plain, checkpointText: text))
    // A cosigned note round-trips, and the witness counts once for two lines.
    let again = try signer.cosign(checkpointText: text, time: 1_700_000_001)
    let note = try SignedNote.parse(SignedNote(text: text, signatures: [sig, again]).serialized())
    #expect(note.verifiedCosigners([v, v]) == [v])
    #expect(throws: TsukuError.self) { try signer.cosign(checkpointText: text, time: 1 << 63) }
  }
}
