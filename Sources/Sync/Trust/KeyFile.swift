import Foundation
import Store
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Key files: the private key as JSON `{"type":"ed25519","keyid":…,"private":<base64 seed>}`
/// (or, encrypted, `{"type","keyid","public","encrypted":{…}}`, see `SealedSeed`) with mode
/// 0600, and the public key beside it in `FILE.pub` as `{"type","keyid","public"}`.
///
/// Every command reads its private keys through `readPrivate`, which also takes the key's
/// text from an environment variable (`env:NAME`) or from standard input (`-`): such a key is
/// held in memory only, never written anywhere.
public enum KeyFile {
  /// Every field a key file may hold.
  struct Fields: Codable {
    var type: String
    var keyid: String
    var `private`: String?
    var `public`: String?
    var encrypted: SealedSeed?
    var note: String?
  }

  /// The most a key's text may take (a key file holds a few hundred bytes).
  static let maxSize = 64 * 1024

  /// Writes a new key pair; refuses to overwrite an existing file. With a passphrase the seed
  /// is stored encrypted (`SealedSeed`).
  public static func write(_ key: SigningKey, to path: String, note: String? = nil, passphrase: [UInt8]? = nil) throws {
    guard let seed = key.seed else { throw TsukuError(.usage, "an external signer's key cannot be written to a file") }
    var priv = Fields(type: "ed25519", keyid: key.keyID, note: note)
    if let passphrase {
      priv.public = key.publicKey.public
      priv.encrypted = try SealedSeed.seal(seed, keyID: key.keyID, passphrase: passphrase)
    } else {
      priv.private = Data(seed).base64EncodedString()
    }
    let pub = Fields(type: "ed25519", keyid: key.keyID, public: key.publicKey.public)
    try create(path, JSON.encode(priv, pretty: true) + Data("\n".utf8), mode: 0o600)
    try create(path + ".pub", JSON.encode(pub, pretty: true) + Data("\n".utf8), mode: 0o644)
  }

  /// Reads a private key: `env:NAME` takes the key file's text from the environment variable
  /// `NAME` (then removed from this process's environment, so no child process inherits it),
  /// `-` from standard input (once per command), anything else is a key file's path. A key
  /// file readable by group or others is refused; an encrypted key asks for its passphrase
  /// (`Passphrase.forReading`).
  public static func readPrivate(_ spec: String) throws -> SigningKey {
    if spec == "-" { return try parsePrivate(try standardInput(), what: "the key on standard input (--key -)") }
    if spec.hasPrefix("env:") { return try fromEnvironment(String(spec.dropFirst(4))) }
    return try readPrivateFile(spec)
  }

  private static let envKeys = Mutex([String: SigningKey]())
  private static let stdinTaken = Mutex(false)

  private static func fromEnvironment(_ name: String) throws -> SigningKey {
    if let k = envKeys.withLock({ $0[name] }) { return k }
    guard !name.isEmpty, name.allSatisfy({ $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
      throw TsukuError(.usage, "invalid key source 'env:\(name)': expected env:NAME, NAME an environment variable")
    }
    guard let text = ProcessEnvironment.current[name], !text.isEmpty else {
      throw TsukuError(.usage, "environment variable '\(name)' (--key env:\(name)) is not set")
    }
    let key = try parsePrivate(Data(text.utf8), what: "the key in environment variable '\(name)'")
    unsetenv(name)
    envKeys.withLock { $0[name] = key }
    return key
  }

  private static func standardInput() throws -> Data {
    if stdinTaken.withLock({ taken in
      defer { taken = true }; return taken
    }) {
      throw TsukuError(.usage, "'--key -' given twice: standard input holds one key")
    }
    var data = Data()
    while let chunk = try FileHandle.standardInput.read(upToCount: maxSize + 1 - data.count), !chunk.isEmpty {
      data += chunk
      if data.count > maxSize { throw TsukuError(.usage, "the key on standard input (--key -) is larger than 64 KiB") }
    }
    if data.isEmpty { throw TsukuError(.usage, "the key on standard input (--key -) is empty") }
    return data
  }

  private static func readPrivateFile(_ path: String) throws -> SigningKey {
    var st = stat()
    guard stat(path, &st) == 0 else { throw TsukuError(.usage, "cannot read key file '\(path)': no such file") }
    let data = try readSmall(path)
    if let f = try? JSONDecoder().decode(Fields.self, from: data), f.private == nil, f.encrypted == nil, f.public != nil
    {
      throw TsukuError(.usage, "'\(path)' is a public key; give the private key file (without .pub)")
    }
    if st.st_mode & 0o077 != 0 {
      throw TsukuError(
        .usage, "key file '\(path)' is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600"
      )
    }
    return try parsePrivate(data, what: "key file '\(path)'")
  }

  /// A private key from a key file's text; `what` names where it came from in messages (which
  /// never quote the text).
  static func parsePrivate(_ data: Data, what: String) throws -> SigningKey {
    guard let f = try? JSONDecoder().decode(Fields.self, from: data), f.private != nil || f.encrypted != nil else {
      throw TsukuError(.usage, "\(what) is not a tsuku private key (was a .pub file given?)")
    }
    guard f.type == "ed25519" else { throw TsukuError(.usage, "\(what) holds an unsupported key type '\(f.type)'") }
    var seed: [UInt8]
    if let sealed = f.encrypted {
      seed = try sealed.open(keyID: f.keyid, what: what, passphrase: try Passphrase.forReading(what))
    } else {
      guard let d = f.private.flatMap({ Data(base64Encoded: $0) }), d.count == Ed25519.seedSize else {
        throw TsukuError(.usage, "\(what) holds an unsupported key type '\(f.type)'")
      }
      seed = [UInt8](d)
    }
    defer { SecretBox.wipe(&seed) }
    let key = try SigningKey(seed: seed)
    if key.keyID != f.keyid {
      throw TsukuError(.usage, "\(what) is damaged: its keyid does not match its key")
    }
    return key
  }

  /// Reads a public key file (`.pub`), or the public half of a private key file (an encrypted
  /// one holds it in clear: no passphrase is needed).
  public static func readPublic(_ path: String) throws -> PublicKey {
    let data = try readSmall(path)
    guard let f = try? JSONDecoder().decode(Fields.self, from: data) else {
      throw TsukuError(.usage, "'\(path)' is not a tsuku public key file")
    }
    if let p = f.public {
      let key = PublicKey(type: f.type, public: p)
      guard key.ed25519 != nil else {
        throw TsukuError(.usage, "public key file '\(path)' holds an unsupported key type '\(f.type)'")
      }
      guard key.keyID == f.keyid else {
        throw TsukuError(.usage, "public key file '\(path)' is damaged: its keyid does not match its key")
      }
      return key
    }
    if f.private != nil { return try readPrivate(path).publicKey }
    throw TsukuError(.usage, "'\(path)' is not a tsuku public key file")
  }

  /// A public key from a `.pub` file's text (what an external signer prints).
  static func parsePublic(_ data: Data, what: String) throws -> PublicKey {
    guard let f = try? JSONDecoder().decode(Fields.self, from: data), let p = f.public, f.private == nil else {
      throw TsukuError(.usage, "\(what) is not a tsuku public key")
    }
    let key = PublicKey(type: f.type, public: p)
    guard key.ed25519 != nil else { throw TsukuError(.usage, "\(what) holds an unsupported key type '\(f.type)'") }
    guard key.keyID == f.keyid else { throw TsukuError(.usage, "\(what) is damaged: its keyid does not match its key") }
    return key
  }

  private static func readSmall(_ path: String) throws -> Data {
    guard let h = FileHandle(forReadingAtPath: path) else {
      throw TsukuError(.usage, "cannot read key file '\(path)'")
    }
    defer { try? h.close() }
    let data = (try? h.read(upToCount: maxSize)) ?? nil
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
