import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

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

/// A private signing key read from a key file.
public struct SigningKey: Sendable {
  public let seed: [UInt8]
  public let publicKey: PublicKey
  public var keyID: String { publicKey.keyID }

  public init(seed: [UInt8]) throws {
    self.seed = seed
    publicKey = PublicKey(ed25519: try Ed25519.publicKey(seed: seed))
  }

  public static func generate() throws -> SigningKey { try SigningKey(seed: Ed25519.generateSeed()) }

  public func sign(_ message: [UInt8]) throws -> [UInt8] { try Ed25519.sign(message, seed: seed) }
}

/// Key files: the private key as JSON `{"type":"ed25519","keyid":…,"private":<base64 seed>}`
/// with mode 0600, and the public key beside it in `FILE.pub` as `{"type","keyid","public"}`.
public enum KeyFile {
  struct PrivateFile: Codable {
    var type: String
    var keyid: String
    var `private`: String
    var note: String?
  }
  struct PublicFile: Codable {
    var type: String
    var keyid: String
    var `public`: String
  }

  /// Writes a new key pair; refuses to overwrite an existing file.
  public static func write(_ key: SigningKey, to path: String, note: String? = nil) throws {
    let priv = PrivateFile(
      type: "ed25519", keyid: key.keyID, private: Data(key.seed).base64EncodedString(), note: note)
    let pub = PublicFile(type: "ed25519", keyid: key.keyID, public: key.publicKey.public)
    try create(path, JSON.encode(priv, pretty: true) + Data("\n".utf8), mode: 0o600)
    try create(path + ".pub", JSON.encode(pub, pretty: true) + Data("\n".utf8), mode: 0o644)
  }

  /// Reads a private key file. A file readable by group or others is refused.
  public static func readPrivate(_ path: String) throws -> SigningKey {
    if let d = FileManager.default.contents(atPath: path), (try? JSONDecoder().decode(PublicFile.self, from: d)) != nil {
      throw TsukuError(.usage, "'\(path)' is a public key; give the private key file (without .pub)")
    }
    var st = stat()
    guard stat(path, &st) == 0 else { throw TsukuError(.usage, "cannot read key file '\(path)': no such file") }
    if st.st_mode & 0o077 != 0 {
      throw TsukuError(
        .usage, "key file '\(path)' is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600")
    }
    let data = try readSmall(path)
    guard let f = try? JSONDecoder().decode(PrivateFile.self, from: data) else {
      throw TsukuError(.usage, "key file '\(path)' is not a tsuku private key (was a .pub file given?)")
    }
    guard f.type == "ed25519", let seed = Data(base64Encoded: f.private), seed.count == Ed25519.seedSize else {
      throw TsukuError(.usage, "key file '\(path)' holds an unsupported key type '\(f.type)'")
    }
    let key = try SigningKey(seed: [UInt8](seed))
    if key.keyID != f.keyid {
      throw TsukuError(.usage, "key file '\(path)' is damaged: its keyid does not match its key")
    }
    return key
  }

  /// Reads a public key file (`.pub`), or the public half of a private key file.
  public static func readPublic(_ path: String) throws -> PublicKey {
    let data = try readSmall(path)
    if let f = try? JSONDecoder().decode(PublicFile.self, from: data) {
      let key = PublicKey(type: f.type, public: f.public)
      guard key.ed25519 != nil else {
        throw TsukuError(.usage, "public key file '\(path)' holds an unsupported key type '\(f.type)'")
      }
      guard key.keyID == f.keyid else {
        throw TsukuError(.usage, "public key file '\(path)' is damaged: its keyid does not match its key")
      }
      return key
    }
    if (try? JSONDecoder().decode(PrivateFile.self, from: data)) != nil {
      return try readPrivate(path).publicKey
    }
    throw TsukuError(.usage, "'\(path)' is not a tsuku public key file")
  }

  private static func readSmall(_ path: String) throws -> Data {
    guard let h = FileHandle(forReadingAtPath: path) else {
      throw TsukuError(.usage, "cannot read key file '\(path)'")
    }
    defer { try? h.close() }
    let data = (try? h.read(upToCount: 64 * 1024)) ?? nil
    return data ?? Data()
  }

  private static func create(_ path: String, _ data: Data, mode: mode_t) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    if fd < 0 {
      let e = errno
      if e == EEXIST { throw TsukuError(.usage, "'\(path)' already exists; refusing to overwrite a key") }
      throw TsukuError(.other, "cannot write '\(path)': \(String(cString: strerror(e)))")
    }
    defer { close(fd) }
    fchmod(fd, mode)
    let ok = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count }
    if !ok || fsync(fd) != 0 {
      unlink(path)
      throw TsukuError(.other, "cannot write '\(path)'")
    }
  }
}

extension PublicKey {
  init(type: String, public: String) {
    self.type = type
    self.public = `public`
  }
}
