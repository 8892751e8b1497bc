import Foundation
import Store
import Testing

@testable import Sync

/// Encrypted key files and external signer command lines, below the CLI.
@Suite struct KeyEncryptionTests {
  @Test func aSealedSeedOpensWithItsPassphraseOnly() throws {
    let key = try SigningKey.generate()
    let sealed = try SealedSeed.seal(key.seed!, keyID: key.keyID, passphrase: Array("pass phrase".utf8))
    #expect(try sealed.open(keyID: key.keyID, what: "k", passphrase: Array("pass phrase".utf8)) == key.seed!)
    #expect(throws: TsukuError.self) {
      try sealed.open(keyID: key.keyID, what: "k", passphrase: Array("pass phrasE".utf8))
    }
    // The key id is authenticated with the seed.
    #expect(throws: TsukuError.self) {
      try sealed.open(keyID: String(repeating: "0", count: 64), what: "k", passphrase: Array("pass phrase".utf8))
    }
  }

  @Test func scryptParametersOutOfRangeAreRefusedBeforeAnyWork() throws {
    let key = try SigningKey.generate()
    var sealed = try SealedSeed.seal(key.seed!, keyID: key.keyID, passphrase: Array("p".utf8))
    sealed.n = 1 << 30
    do {
      _ = try sealed.open(keyID: key.keyID, what: "key file 'k'", passphrase: Array("p".utf8))
      Issue.record("opened")
    } catch let e as TsukuError {
      #expect(e.message == "key file 'k' has scrypt parameters out of range (n 1073741824, r 8, p 1)")
    }
  }

  @Test func signerCommandLinesSplitWithoutAShell() throws {
    #expect(
      try ExternalSigner.words("kms-sign --key 'alias/tsuku index' \"a \\\"b\\\"\" c\\ d") == [
        "kms-sign", "--key", "alias/tsuku index", "a \"b\"", "c d",
      ])
    #expect(try ExternalSigner.words("  one  ") == ["one"])
    #expect(try ExternalSigner.words("a '' b") == ["a", "", "b"])
    #expect(throws: TsukuError.self) { try ExternalSigner.words("a 'b") }
    #expect(throws: TsukuError.self) { try ExternalSigner("   ", timeout: 1) }
  }
}
