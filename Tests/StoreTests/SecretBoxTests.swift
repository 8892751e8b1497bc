import Foundation
import Testing

@testable import Store

/// The passphrase encryption of private keys: known answers for scrypt (RFC 7914) and
/// AES-256-GCM (the GCM specification's test cases 13 and 14), and what a wrong key does.
@Suite struct SecretBoxTests {
  func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

  @Test func scryptMatchesRFC7914() throws {
    let k = try SecretBox.scrypt(passphrase: Array("password".utf8), salt: Array("NaCl".utf8), n: 1024, r: 8, p: 16)
    #expect(hex(k) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162")
  }

  @Test func aesGCMMatchesTheSpecificationsTestCases() throws {
    let key = [UInt8](repeating: 0, count: 32)
    let nonce = [UInt8](repeating: 0, count: 12)
    #expect(hex(try SecretBox.seal([], key: key, nonce: nonce, aad: [])) == "530f8afbc74536b9a963b4f1c4cb738b")
    let sealed = try SecretBox.seal([UInt8](repeating: 0, count: 16), key: key, nonce: nonce, aad: [])
    #expect(hex(sealed) == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
    #expect(try SecretBox.open(sealed, key: key, nonce: nonce, aad: []) == [UInt8](repeating: 0, count: 16))
  }

  @Test func aWrongKeyADifferentAADOrAFlippedBitOpensNothing() throws {
    let key = try SecretBox.random(32)
    let nonce = try SecretBox.random(12)
    let sealed = try SecretBox.seal(Array("seed".utf8), key: key, nonce: nonce, aad: Array("id".utf8))
    #expect(try SecretBox.open(sealed, key: key, nonce: nonce, aad: Array("id".utf8)) == Array("seed".utf8))
    var other = key
    other[0] ^= 1
    #expect(try SecretBox.open(sealed, key: other, nonce: nonce, aad: Array("id".utf8)) == nil)
    #expect(try SecretBox.open(sealed, key: key, nonce: nonce, aad: Array("other".utf8)) == nil)
    var flipped = sealed
    flipped[1] ^= 0x80
    #expect(try SecretBox.open(flipped, key: key, nonce: nonce, aad: Array("id".utf8)) == nil)
  }
}
