import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// A private key seed encrypted under a passphrase: the `encrypted` object of a key file.
/// scrypt (`n`, `r`, `p`, a 16-byte random `salt`) derives a 32-byte key from the passphrase's
/// UTF-8 bytes; AES-256-GCM with a 12-byte random `nonce` seals the 32-byte seed, with the
/// associated data `"tsuku-key-v1\n" + "ed25519" + "\n" + keyid`, so the file's key id is
/// authenticated with the seed. `ciphertext` is the sealed seed followed by the 16-byte tag.
public struct SealedSeed: Codable, Sendable {
  public var kdf: String
  public var n: UInt64
  public var r: UInt64
  public var p: UInt64
  public var salt: String
  public var cipher: String
  public var nonce: String
  public var ciphertext: String

  /// The cost a new key gets: 128 MiB of memory and about a second of work.
  public static let defaultN: UInt64 = 1 << 17

  static func aad(_ keyID: String) -> [UInt8] { Array("tsuku-key-v1\ned25519\n\(keyID)".utf8) }

  static func seal(_ seed: [UInt8], keyID: String, passphrase: [UInt8]) throws -> SealedSeed {
    let salt = try SecretBox.random(16)
    let nonce = try SecretBox.random(SecretBox.nonceSize)
    var key = try SecretBox.scrypt(passphrase: passphrase, salt: salt, n: defaultN, r: 8, p: 1)
    defer { SecretBox.wipe(&key) }
    let sealed = try SecretBox.seal(seed, key: key, nonce: nonce, aad: aad(keyID))
    return SealedSeed(
      kdf: "scrypt", n: defaultN, r: 8, p: 1, salt: Data(salt).base64EncodedString(), cipher: "aes-256-gcm",
      nonce: Data(nonce).base64EncodedString(), ciphertext: Data(sealed).base64EncodedString())
  }

  /// The seed; a wrong passphrase (or a damaged file: the two cannot be told apart) is a
  /// usage error.
  func open(keyID: String, what: String, passphrase: [UInt8]) throws -> [UInt8] {
    var passphrase = passphrase
    defer { SecretBox.wipe(&passphrase) }
    guard kdf == "scrypt", cipher == "aes-256-gcm" else {
      throw TsukuError(.usage, "\(what) is encrypted with '\(kdf)' and '\(cipher)': expected scrypt and aes-256-gcm")
    }
    // Bounded so a hostile file cannot make the derivation take unbounded memory or time.
    guard n >= 1 << 14, n <= 1 << 20, n & (n - 1) == 0, (1...32).contains(r), (1...16).contains(p),
      128 * r * n * p <= SecretBox.maxMemory / 2
    else {
      throw TsukuError(.usage, "\(what) has scrypt parameters out of range (n \(n), r \(r), p \(p))")
    }
    guard let salt = Data(base64Encoded: salt), salt.count >= 16, let nonce = Data(base64Encoded: nonce),
      nonce.count == SecretBox.nonceSize, let sealed = Data(base64Encoded: ciphertext),
      sealed.count == Ed25519.seedSize + SecretBox.tagSize
    else { throw TsukuError(.usage, "\(what) is damaged: its encrypted fields are malformed") }
    var key = try SecretBox.scrypt(passphrase: passphrase, salt: [UInt8](salt), n: n, r: r, p: p)
    defer { SecretBox.wipe(&key) }
    guard let seed = try SecretBox.open([UInt8](sealed), key: key, nonce: [UInt8](nonce), aad: SealedSeed.aad(keyID))
    else {
      throw TsukuError(.usage, "wrong passphrase for \(what) (or the file is damaged)")
    }
    return seed
  }
}

/// Where passphrases come from: an environment variable, else a prompt on the terminal
/// (`/dev/tty`, echo off). Never from a file or an option's value, so a passphrase does not
/// show in a process list or a shell history.
public enum Passphrase {
  /// The variable an encrypted key's passphrase is read from.
  public static let variable = "TSUKU_KEY_PASSPHRASE"

  /// The passphrase of an encrypted key: `TSUKU_KEY_PASSPHRASE`, else asked on the terminal.
  public static func forReading(_ what: String) throws -> [UInt8] {
    if let p = ProcessEnvironment.current[variable], !p.isEmpty { return Array(p.utf8) }
    guard let p = prompt("passphrase for \(what): ") else {
      throw TsukuError(.usage, "\(what) is encrypted: set \(variable) or run on a terminal to enter its passphrase")
    }
    return p
  }

  /// The passphrase for a new key: from the variable `env`, or, with `ask`, entered twice on
  /// the terminal. Nil when neither is asked for (an unencrypted key).
  public static func forNewKey(env: String?, ask: Bool) throws -> [UInt8]? {
    if let env {
      guard let p = ProcessEnvironment.current[env], !p.isEmpty else {
        throw TsukuError(.usage, "environment variable '\(env)' (--passphrase-env) is not set")
      }
      return Array(p.utf8)
    }
    guard ask else { return nil }
    guard let first = prompt("passphrase for the new key: "), let second = prompt("the same passphrase again: ") else {
      throw TsukuError(.usage, "--encrypt needs a terminal to enter the passphrase; or give --passphrase-env NAME")
    }
    guard !first.isEmpty else { throw TsukuError(.usage, "the passphrase is empty") }
    guard first == second else { throw TsukuError(.usage, "the two passphrases differ; nothing written") }
    return first
  }

  /// One line read from the terminal with echo off; nil when there is no terminal.
  static func prompt(_ text: String) -> [UInt8]? {
    let fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    guard isatty(fd) == 1 else { return nil }
    var saved = termios()
    let hasTerm = tcgetattr(fd, &saved) == 0
    if hasTerm {
      var quiet = saved
      quiet.c_lflag &= ~tcflag_t(ECHO)
      tcsetattr(fd, TCSAFLUSH, &quiet)
    }
    defer {
      if hasTerm { tcsetattr(fd, TCSAFLUSH, &saved) }
      _ = write(fd, "\n", 1)
    }
    _ = text.withCString { write(fd, $0, strlen($0)) }
    var line = [UInt8]()
    var c: UInt8 = 0
    while read(fd, &c, 1) == 1, c != 10, line.count < 4096 { line.append(c) }
    if line.last == 13 { line.removeLast() }
    return line
  }
}
