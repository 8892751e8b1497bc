import Foundation
import Testing

@testable import Store

/// Published test vectors for the primitives everything else rests on.
@Suite struct KnownAnswerTests {
  static func bytes(_ hex: String) -> [UInt8] {
    var out = [UInt8]()
    var it = hex.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
  }

  static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

  // MARK: SHA-256 (FIPS 180-2 examples)

  @Test func sha256OfEmpty() {
    #expect(SHA256.hash("").hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(SHA256.hash(Data()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
  }

  @Test func sha256OfABC() {
    #expect(SHA256.hash("abc").hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  }

  @Test func sha256OfTwoBlocks() {
    let m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    #expect(SHA256.hash(m).hex == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
  }

  @Test func sha256OfAMillionAs() {
    let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    #expect(SHA256.hash(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)).hex == expected)
    var h = SHA256()
    let chunk = Data(repeating: UInt8(ascii: "a"), count: 1000)
    for _ in 0..<1000 { h.update(chunk) }
    #expect(h.finish().hex == expected)
  }

  @Test func streamingEqualsOneShot() {
    var data = Data()
    for i in 0..<5000 { data.append(UInt8(truncatingIfNeeded: i &* 31 &+ 7)) }
    var h = SHA256()
    var offset = 0
    var size = 0
    while offset < data.count {
      let n = min(size, data.count - offset)  // chunks of 0, 1, 2, ... bytes
      h.update(data.subdata(in: offset..<offset + n))
      offset += n
      size += 1
    }
    #expect(h.finish() == SHA256.hash(data))
  }

  @Test func hashOverloadsAgree() {
    let text = "tsuku recipe"
    #expect(SHA256.hash(text) == SHA256.hash(Data(text.utf8)))
    #expect(SHA256.hash(text) == SHA256.hash(Array(text.utf8)))
  }

  // MARK: Ed25519 (RFC 8032 section 7.1, tests 1 and 2)

  struct Vector: Sendable, CustomTestStringConvertible {
    let name: String, secret: String, publicKey: String, message: String, signature: String
    var testDescription: String { name }
  }

  static let vectors = [
    Vector(
      name: "rfc8032 test 1",
      secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      message: "",
      signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    ),
    Vector(
      name: "rfc8032 test 2",
      secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
      publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
      message: "72",
      signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    ),
  ]

  @Test(arguments: vectors) func ed25519Vector(_ v: Vector) throws {
    let seed = Self.bytes(v.secret)
    let message = Self.bytes(v.message)
    #expect(Self.hex(try Ed25519.publicKey(seed: seed)) == v.publicKey)
    let signature = try Ed25519.sign(message, seed: seed)
    #expect(Self.hex(signature) == v.signature)
    #expect(Ed25519.verify(signature, of: message, publicKey: Self.bytes(v.publicKey)))
  }

  @Test(arguments: vectors) func ed25519RejectsFlippedBits(_ v: Vector) {
    let message = Self.bytes(v.message)
    let signature = Self.bytes(v.signature)
    let key = Self.bytes(v.publicKey)
    for bit in [0, 7, 100, 255, 256, 511] {
      var bad = signature
      bad[bit / 8] ^= 1 << UInt8(bit % 8)
      #expect(!Ed25519.verify(bad, of: message, publicKey: key), "signature bit \(bit)")
    }
    var longer = message
    longer.append(0)
    #expect(!Ed25519.verify(signature, of: longer, publicKey: key))
    if !message.isEmpty {
      var flipped = message
      flipped[0] ^= 1
      #expect(!Ed25519.verify(signature, of: flipped, publicKey: key))
    }
    var otherKey = key
    otherKey[0] ^= 1
    #expect(!Ed25519.verify(signature, of: message, publicKey: otherKey))
  }

  @Test func ed25519RejectsMalformedInput() {
    let v = Self.vectors[0]
    let sig = Self.bytes(v.signature)
    let key = Self.bytes(v.publicKey)
    #expect(!Ed25519.verify(Array(sig.dropLast()), of: [], publicKey: key))
    #expect(!Ed25519.verify(sig, of: [], publicKey: Array(key.dropLast())))
    #expect(!Ed25519.verify([], of: [], publicKey: []))
    #expect(throws: TsukuError.self) { try Ed25519.sign([1], seed: [1, 2, 3]) }
  }

  @Test func ed25519FreshKeysRoundTrip() throws {
    let seed = try Ed25519.generateSeed()
    #expect(seed.count == Ed25519.seedSize)
    let key = try Ed25519.publicKey(seed: seed)
    let sig = try Ed25519.sign(Array("index".utf8), seed: seed)
    #expect(Ed25519.verify(sig, of: Array("index".utf8), publicKey: key))
    #expect(!Ed25519.verify(sig, of: Array("indey".utf8), publicKey: key))
  }

  // MARK: ObjectID parsing

  static let abcHex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

  @Test func objectIDRoundTrips() throws {
    let id = try #require(ObjectID(hex: Self.abcHex))
    #expect(id.hex == Self.abcHex)
    #expect(id == SHA256.hash("abc"))
    #expect(ObjectID(bytes: id.bytes) == id)
    #expect(id.fanout == "ba")
    #expect(id.path == "objects/sha256/ba/" + Self.abcHex)
    #expect(try ObjectID.parse(Self.abcHex) == id)
    let json = try JSONEncoder().encode([id])
    #expect(try JSONDecoder().decode([ObjectID].self, from: json) == [id])
  }

  @Test(arguments: [
    abcHex.uppercased(),
    "BA" + abcHex.dropFirst(2),
    String(abcHex.dropLast()),
    abcHex + "0",
    "sha256:" + abcHex,
    " " + abcHex.dropFirst(),
    String(abcHex.dropLast()) + "g",
    String(abcHex.dropLast()) + "\n",
    "",
  ])
  func objectIDRejects(_ text: String) {
    #expect(ObjectID(hex: text) == nil)
    #expect(throws: TsukuError.self) { try ObjectID.parse(text) }
    let json = Data("[\"\(text.replacingOccurrences(of: "\n", with: "\\n"))\"]".utf8)
    #expect(throws: DecodingError.self) { try JSONDecoder().decode([ObjectID].self, from: json) }
  }

  @Test func objectIDParseErrorIsUsage() {
    do {
      _ = try ObjectID.parse("nope")
      Issue.record("expected an error")
    } catch let e as TsukuError {
      #expect(e.code == .usage)
      #expect(e.message.contains("'nope'"))
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  @Test func objectIDOrdersLikeHex() {
    let ids = (0..<50).map { SHA256.hash("blob \($0)") }
    #expect(ids.sorted().map(\.hex) == ids.map(\.hex).sorted())
  }
}
