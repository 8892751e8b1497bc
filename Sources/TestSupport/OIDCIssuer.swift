// OpenSSL for the test issuer's RSA keys: the product never signs with RSA.
import COpenSSL
import Foundation
import Store
import Synchronization

/// An OpenSSL RSA key (2048 bits) that signs JWTs with RS256.
public final class RSAKey: @unchecked Sendable {
  // Safe: the key is never changed after it is made, and OpenSSL signs with it from any thread.
  private let pkey: OpaquePointer

  public init() throws {
    guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nil) else { throw Self.failure("EVP_PKEY_CTX_new_id") }
    defer { EVP_PKEY_CTX_free(ctx) }
    var key: OpaquePointer?
    guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &key) == 1, let key else {
      throw Self.failure("RSA key generation")
    }
    pkey = key
  }

  deinit { EVP_PKEY_free(pkey) }

  /// The RS256 signature (PKCS #1 v1.5 over SHA-256) of `message`.
  public func sign(_ message: [UInt8]) throws -> [UInt8] {
    guard let ctx = EVP_MD_CTX_new() else { throw Self.failure("EVP_MD_CTX_new") }
    defer { EVP_MD_CTX_free(ctx) }
    guard EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, pkey) == 1 else { throw Self.failure("EVP_DigestSignInit") }
    var len = 0
    guard EVP_DigestSign(ctx, nil, &len, message, message.count) == 1 else { throw Self.failure("EVP_DigestSign") }
    var sig = [UInt8](repeating: 0, count: len)
    guard EVP_DigestSign(ctx, &sig, &len, message, message.count) == 1 else { throw Self.failure("EVP_DigestSign") }
    return Array(sig.prefix(len))
  }

  /// The public key as a JWK (`kty`, `n`, `e`, with `kid`), for a JWKS.
  public func jwk(kid: String) throws -> [String: String] {
    var out: UnsafeMutablePointer<UInt8>?
    let n = i2d_PublicKey(pkey, &out)
    guard n > 0, let der = out else { throw Self.failure("i2d_PublicKey") }
    defer { CRYPTO_free(der, #file, #line) }
    // PKCS #1 RSAPublicKey: SEQUENCE { INTEGER modulus, INTEGER exponent }.
    var reader = DER(Array(UnsafeBufferPointer(start: der, count: Int(n))))
    guard let seq = reader.next(tag: 0x30) else { throw TsukuError(.other, "RSA public key: no SEQUENCE") }
    var inner = DER(seq)
    guard let modulus = inner.next(tag: 0x02), let exponent = inner.next(tag: 0x02) else {
      throw TsukuError(.other, "RSA public key: no modulus and exponent")
    }
    func unsigned(_ b: [UInt8]) -> [UInt8] { Array(b.drop { $0 == 0 }) }
    return [
      "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": base64URL(unsigned(modulus)),
      "e": base64URL(unsigned(exponent)),
    ]
  }

  private static func failure(_ what: String) -> TsukuError {
    TsukuError(.other, "openssl \(what) failed (error \(ERR_get_error()))")
  }
}

/// Reads DER elements one after another (short and long definite lengths).
private struct DER {
  var bytes: [UInt8]
  var at = 0
  init(_ bytes: [UInt8]) { self.bytes = bytes }

  mutating func next(tag: UInt8) -> [UInt8]? {
    guard at + 2 <= bytes.count, bytes[at] == tag else { return nil }
    var len = Int(bytes[at + 1])
    var start = at + 2
    if len & 0x80 != 0 {
      let count = len & 0x7F
      guard count <= 4, start + count <= bytes.count else { return nil }
      len = bytes[start..<start + count].reduce(0) { $0 << 8 | Int($1) }
      start += count
    }
    guard start + len <= bytes.count else { return nil }
    at = start + len
    return Array(bytes[start..<start + len])
  }
}

/// Base64url without padding, as JWTs and JWKs use.
public func base64URL(_ bytes: [UInt8]) -> String {
  Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    .replacingOccurrences(of: "=", with: "")
}

/// An OpenID Connect issuer on loopback, standing in for a CI's: its discovery document and its
/// JWKS (one RSA key, `kid` `k1`) over HTTP, and JWTs minted by the test with any subject,
/// audience and lifetime, signed by its key or by another one.
public final class OIDCIssuer: Sendable {
  private let server: LoopbackServer
  public let key: RSAKey
  public static let kid = "k1"
  /// The audience the test STS expects (its provider's `clientId`).
  public static let audience = "tsuku-publish"

  public var url: String { server.url }
  public var jwksURL: String { server.url + "/keys" }

  public init() throws {
    let key = try RSAKey()
    self.key = key
    let jwks = try JSONSerialization.data(
      withJSONObject: ["keys": [try key.jwk(kid: Self.kid)]], options: [.sortedKeys])
    let issuerURL = Mutex<String>("")
    server = try LoopbackServer(recording: false) { req in
      let path = req.path.split(separator: "?").first.map(String.init) ?? req.path
      let json = [("Content-Type", "application/json")]
      switch path {
      case "/keys": return .respond(200, headers: json, body: jwks)
      case "/.well-known/openid-configuration":
        let base = issuerURL.withLock { $0 }
        let doc = ["issuer": base, "jwks_uri": base + "/keys", "id_token_signing_alg_values_supported": "RS256"]
        return .respond(200, headers: json, body: (try? JSONSerialization.data(withJSONObject: doc)) ?? Data())
      default: return .respond(404)
      }
    }
    issuerURL.withLock { $0 = server.url }
  }

  deinit { server.stop() }

  /// A signed JWT from this issuer for `subject` and `audience`, valid from now for
  /// `lifetime` seconds (negative: already expired), signed by `signer` (default: the issuer's
  /// own key, the one its JWKS publishes).
  public func token(
    subject: String, audience: String = OIDCIssuer.audience, lifetime: Double = 600, signer: RSAKey? = nil
  ) throws -> String {
    let now = Int(Date().timeIntervalSince1970)
    let header = try JSONSerialization.data(
      withJSONObject: ["alg": "RS256", "typ": "JWT", "kid": Self.kid], options: [.sortedKeys])
    let expires = now + Int(lifetime)
    let issued = min(now - 5, expires - 60)
    let claims: [String: Any] = [
      "iss": url, "sub": subject, "aud": audience, "iat": issued, "nbf": issued, "exp": expires,
    ]
    let payload = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
    let input = base64URL(Array(header)) + "." + base64URL(Array(payload))
    let signature = try (signer ?? key).sign(Array(input.utf8))
    return input + "." + base64URL(signature)
  }
}
