import Foundation
import Store

/// A public key as it appears in a root document and in a `.pub` file.
public struct PublicKey: Codable, Hashable, Sendable {
  /// Only `ed25519` is understood; keys of any other type never count toward a threshold.
  public var type: String
  /// The 32 raw key bytes, base64.
  public var `public`: String

  public init(ed25519 raw: [UInt8]) {
    type = "ed25519"
    `public` = Data(raw).base64EncodedString()
  }

  /// The raw bytes when this is a well-formed Ed25519 key, else nil.
  public var ed25519: [UInt8]? {
    guard type == "ed25519", let d = Data(base64Encoded: `public`), d.count == Ed25519.publicKeySize else {
      return nil
    }
    return [UInt8](d)
  }

  /// The key id: lowercase hex SHA-256 of the key type, a colon and the raw public key bytes.
  public var keyID: String {
    var bytes = Array("\(type):".utf8)
    bytes += (Data(base64Encoded: `public`).map { [UInt8]($0) } ?? Array(`public`.utf8))
    return SHA256.hash(bytes).hex
  }
}

/// Something that signs with a private key it holds out of this process: an HSM, a cloud KMS,
/// an agent (see `ExternalSigner`). `SigningKey` checks every signature it returns.
public protocol MessageSigner: Sendable {
  /// How messages name it (the command, for an external signer).
  var name: String { get }
  /// The 64-byte Ed25519 signature of `message` by the key `keyID`.
  func sign(_ message: [UInt8], keyID: String) throws -> [UInt8]
}

/// A private signing key: a seed held in memory (from a key file, an environment variable or
/// standard input), or a `MessageSigner` that holds it elsewhere. `Envelope.sign` and every
/// caller take either kind alike.
public struct SigningKey: Sendable {
  enum Secret: Sendable {
    case seed([UInt8])
    case signer(any MessageSigner)
  }
  let secret: Secret
  public let publicKey: PublicKey
  public var keyID: String { publicKey.keyID }
  /// The seed when this process holds it; nil for an external signer.
  public var seed: [UInt8]? {
    if case .seed(let s) = secret { return s }
    return nil
  }

  public init(seed: [UInt8]) throws {
    secret = .seed(seed)
    publicKey = PublicKey(ed25519: try Ed25519.publicKey(seed: seed))
  }

  /// A key whose signatures `signer` makes; `publicKey` must be an Ed25519 key.
  public init(publicKey: PublicKey, signer: any MessageSigner) throws {
    guard publicKey.ed25519 != nil else {
      throw TsukuError(.usage, "signer '\(signer.name)' gave an unsupported key type '\(publicKey.type)'")
    }
    secret = .signer(signer)
    self.publicKey = publicKey
  }

  public static func generate() throws -> SigningKey { try SigningKey(seed: Ed25519.generateSeed()) }

  /// The signature of `message`. A signature from an external signer is verified against the
  /// public key before it is returned: one that does not verify is refused (integrity).
  public func sign(_ message: [UInt8]) throws -> [UInt8] {
    switch secret {
    case .seed(let s): return try Ed25519.sign(message, seed: s)
    case .signer(let signer):
      let sig = try signer.sign(message, keyID: keyID)
      guard Ed25519.verify(sig, of: message, publicKey: publicKey.ed25519 ?? []) else {
        throw TsukuError(
          .integrity, "signer '\(signer.name)' returned a signature that does not verify against its key '\(keyID.prefix(16))'")
      }
      return sig
    }
  }
}

extension PublicKey {
  init(type: String, public: String) {
    self.type = type
    self.public = `public`
  }
}
