// The only file that imports OpenSSL. Each C call goes raw call -> check -> Swift method.
import COpenSSL
import Foundation

private func opensslError(_ what: String) -> TsukuError {
  let code = ERR_get_error()
  var buf = [CChar](repeating: 0, count: 256)
  ERR_error_string_n(code, &buf, buf.count)
  let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  return TsukuError(.other, "openssl \(what) failed: \(text)")
}

private func check(_ rc: Int32, _ what: String) throws {
  if rc != 1 { throw opensslError(what) }
}

/// OpenSSL set up once, without reading the system's openssl.cnf (nothing here needs it, and
/// loading it costs more than the rest of a `tsuku show`).
private let opensslReady: Bool = {
  OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_LOAD_CONFIG), nil) == 1
}()

/// The SHA-256 algorithm, fetched once per process (OpenSSL 3 otherwise looks it up per call).
nonisolated(unsafe) private let sha256MD: OpaquePointer = {
  _ = opensslReady
  guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("openssl has no SHA256") }
  return md
}()

/// A streaming SHA-256 over OpenSSL's EVP interface. Feed bytes with `update`, then `finish`.
public struct SHA256: ~Copyable {
  private let ctx: OpaquePointer

  public init() {
    guard let ctx = EVP_MD_CTX_new(), EVP_DigestInit_ex2(ctx, sha256MD, nil) == 1 else {
      fatalError("openssl could not start a SHA-256 digest")
    }
    self.ctx = ctx
  }

  deinit { EVP_MD_CTX_free(ctx) }

  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    EVP_DigestUpdate(ctx, base, bytes.count)
  }

  public mutating func update(_ data: Data) {
    data.withUnsafeBytes { update($0) }
  }

  public consuming func finish() -> ObjectID {
    var out = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    EVP_DigestFinal_ex(ctx, &out, &len)
    return ObjectID(bytes: out)
  }

  /// The SHA-256 of a whole buffer in one call.
  public static func hash(_ bytes: UnsafeRawBufferPointer) -> ObjectID {
    var out = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    let rc = EVP_Digest(bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, bytes.count, &out, &len, sha256MD, nil)
    precondition(rc == 1, "openssl SHA-256 failed")
    return ObjectID(bytes: out)
  }

  public static func hash(_ data: Data) -> ObjectID { data.withUnsafeBytes { hash($0) } }
  public static func hash(_ bytes: [UInt8]) -> ObjectID { bytes.withUnsafeBytes { hash($0) } }
  public static func hash(_ text: String) -> ObjectID { hash(Array(text.utf8)) }
}

/// The MD5 algorithm, fetched once per process, for `MD5` (S3's `Content-MD5` and ETags only).
nonisolated(unsafe) private let md5MD: OpaquePointer = {
  _ = opensslReady
  guard let md = EVP_MD_fetch(nil, "MD5", nil) else { fatalError("openssl has no MD5") }
  return md
}()

/// The 16-byte MD5 digest of a whole buffer, through EVP.
func opensslMD5(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
  var out = [UInt8](repeating: 0, count: 16)
  var len: UInt32 = 0
  let rc = EVP_Digest(bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, bytes.count, &out, &len, md5MD, nil)
  precondition(rc == 1 && len == 16, "openssl MD5 failed")
  return out
}

/// Ed25519 signing and verification through OpenSSL.
public enum Ed25519 {
  public static let publicKeySize = 32
  public static let seedSize = 32
  public static let signatureSize = 64

  /// Makes a new private key seed from OpenSSL's random generator.
  public static func generateSeed() throws -> [UInt8] {
    var seed = [UInt8](repeating: 0, count: seedSize)
    try check(RAND_bytes(&seed, Int32(seedSize)), "RAND_bytes")
    return seed
  }

  /// The public key for a private key seed.
  public static func publicKey(seed: [UInt8]) throws -> [UInt8] {
    let key = try privateKey(seed)
    defer { EVP_PKEY_free(key) }
    var out = [UInt8](repeating: 0, count: publicKeySize)
    var len = publicKeySize
    try check(EVP_PKEY_get_raw_public_key(key, &out, &len), "EVP_PKEY_get_raw_public_key")
    return out
  }

  /// Signs `message` with the key whose seed is given.
  public static func sign(_ message: [UInt8], seed: [UInt8]) throws -> [UInt8] {
    let key = try privateKey(seed)
    defer { EVP_PKEY_free(key) }
    guard let ctx = EVP_MD_CTX_new() else { throw opensslError("EVP_MD_CTX_new") }
    defer { EVP_MD_CTX_free(ctx) }
    try check(EVP_DigestSignInit(ctx, nil, nil, nil, key), "EVP_DigestSignInit")
    var sig = [UInt8](repeating: 0, count: signatureSize)
    var len = signatureSize
    try check(EVP_DigestSign(ctx, &sig, &len, message, message.count), "EVP_DigestSign")
    return sig
  }

  /// True when `signature` is a valid Ed25519 signature of `message` by `publicKey`.
  /// Malformed keys or signatures are simply not valid; this never throws.
  public static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
    _ = opensslReady
    guard signature.count == signatureSize, publicKey.count == publicKeySize,
      let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, publicKeySize)
    else { return false }
    defer { EVP_PKEY_free(key) }
    guard let ctx = EVP_MD_CTX_new() else { return false }
    defer { EVP_MD_CTX_free(ctx) }
    guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key) == 1 else { return false }
    return EVP_DigestVerify(ctx, signature, signature.count, message, message.count) == 1
  }

  private static func privateKey(_ seed: [UInt8]) throws -> OpaquePointer {
    _ = opensslReady
    guard seed.count == seedSize else {
      throw TsukuError(.usage, "invalid ed25519 private key: \(seed.count) bytes, expected \(seedSize)")
    }
    guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seedSize) else {
      throw opensslError("EVP_PKEY_new_raw_private_key")
    }
    return key
  }
}

/// Sealing a small secret (a private key seed) under a passphrase: scrypt derives the key,
/// AES-256-GCM encrypts and authenticates the secret together with associated data.
public enum SecretBox {
  public static let keySize = 32
  public static let nonceSize = 12
  public static let tagSize = 16
  /// The most memory a key derivation may use (scrypt needs 128 * r * N * p bytes).
  public static let maxMemory: UInt64 = 512 << 20

  /// `count` bytes from OpenSSL's random generator.
  public static func random(_ count: Int) throws -> [UInt8] {
    _ = opensslReady
    var out = [UInt8](repeating: 0, count: count)
    try check(RAND_bytes(&out, Int32(count)), "RAND_bytes")
    return out
  }

  /// The scrypt key of `passphrase` and `salt` with cost `n` (a power of two), block size `r`
  /// and parallelism `p`.
  public static func scrypt(passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64) throws -> [UInt8] {
    _ = opensslReady
    var out = [UInt8](repeating: 0, count: keySize)
    let rc = passphrase.withUnsafeBufferPointer { pass in
      pass.withMemoryRebound(to: CChar.self) { pass in
        EVP_PBE_scrypt(pass.baseAddress, pass.count, salt, salt.count, n, r, p, maxMemory, &out, keySize)
      }
    }
    try check(rc, "EVP_PBE_scrypt")
    return out
  }

  /// The ciphertext of `plaintext` followed by its 16-byte tag.
  public static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
    let ctx = try cipherContext(key: key, nonce: nonce, encrypt: true)
    defer { EVP_CIPHER_CTX_free(ctx) }
    var len: Int32 = 0
    try check(EVP_EncryptUpdate(ctx, nil, &len, aad, Int32(aad.count)), "EVP_EncryptUpdate (aad)")
    var out = [UInt8](repeating: 0, count: plaintext.count + 16)
    try check(EVP_EncryptUpdate(ctx, &out, &len, plaintext, Int32(plaintext.count)), "EVP_EncryptUpdate")
    var total = Int(len)
    var tail = [UInt8](repeating: 0, count: 16)
    try check(EVP_EncryptFinal_ex(ctx, &tail, &len), "EVP_EncryptFinal_ex")
    out.replaceSubrange(total..<total + Int(len), with: tail.prefix(Int(len)))
    total += Int(len)
    var tag = [UInt8](repeating: 0, count: tagSize)
    try check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(tagSize), &tag), "EVP_CTRL_AEAD_GET_TAG")
    return Array(out.prefix(total)) + tag
  }

  /// The plaintext of `sealed` (ciphertext and tag), or nil when the key, the nonce, the
  /// associated data or the bytes are not the ones sealed.
  public static func open(_ sealed: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8]? {
    guard sealed.count >= tagSize else { return nil }
    let ctx = try cipherContext(key: key, nonce: nonce, encrypt: false)
    defer { EVP_CIPHER_CTX_free(ctx) }
    let body = Array(sealed.dropLast(tagSize))
    var tag = Array(sealed.suffix(tagSize))
    var len: Int32 = 0
    try check(EVP_DecryptUpdate(ctx, nil, &len, aad, Int32(aad.count)), "EVP_DecryptUpdate (aad)")
    var out = [UInt8](repeating: 0, count: body.count + 16)
    try check(EVP_DecryptUpdate(ctx, &out, &len, body, Int32(body.count)), "EVP_DecryptUpdate")
    let total = Int(len)
    try check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(tagSize), &tag), "EVP_CTRL_AEAD_SET_TAG")
    var tail = [UInt8](repeating: 0, count: 16)
    guard EVP_DecryptFinal_ex(ctx, &tail, &len) == 1 else {
      ERR_clear_error()
      out.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
      return nil
    }
    return Array(out.prefix(total + Int(len)))
  }

  /// Overwrites a secret in place, in a way the compiler does not remove.
  public static func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
  }

  private static func cipherContext(key: [UInt8], nonce: [UInt8], encrypt: Bool) throws -> OpaquePointer {
    _ = opensslReady
    guard key.count == keySize, nonce.count == nonceSize else {
      throw TsukuError(.usage, "invalid AES-256-GCM key or nonce size: \(key.count), \(nonce.count)")
    }
    guard let ctx = EVP_CIPHER_CTX_new() else { throw opensslError("EVP_CIPHER_CTX_new") }
    let rc =
      encrypt
      ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce)
    if rc != 1 {
      EVP_CIPHER_CTX_free(ctx)
      throw opensslError("EVP_CipherInit_ex")
    }
    return ctx
  }
}
