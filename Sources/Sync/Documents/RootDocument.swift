import Foundation
import Store

/// Keys and threshold of one role.
public struct RoleKeys: Codable, Hashable, Sendable {
  public var keyids: [String]
  public var threshold: Int
  public init(keyids: [String], threshold: Int) {
    self.keyids = keyids
    self.threshold = threshold
  }
}

/// The root document: which keys may sign for which role, and how many must.
public struct RootPayload: Codable, Hashable, Sendable {
  public var format: Int
  public var type: String
  public var version: Int
  public var expires: String
  public var keys: [String: PublicKey]
  public var roles: [String: RoleKeys]
  /// The origin line of the transparency log's checkpoints (its name); present exactly when
  /// the `log` role is (format.md, "Transparency log").
  public var log_origin: String?

  public init(version: Int, expires: Date, keys: [PublicKey], roles: [Role: RoleKeys], logOrigin: String? = nil) {
    format = Format.current
    type = DocumentType.root.rawValue
    self.version = version
    self.expires = Timestamp.format(expires)
    self.keys = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { a, _ in a })
    self.roles = Dictionary(uniqueKeysWithValues: roles.map { ($0.key.rawValue, $0.value) })
    self.log_origin = roles[.log] == nil ? nil : logOrigin
  }

  public var expiryDate: Date? { Timestamp.parse(expires) }

  /// Parses and checks the shape: format, type, every role present with a sane threshold.
  public static func parse(_ bytes: Data, what: String) throws -> RootPayload {
    let r = try JSON.decode(RootPayload.self, bytes, what: what)
    try checkFormat(r.format, what)
    guard r.type == DocumentType.root.rawValue else {
      throw TsukuError(.integrity, "\(what) has type '\(r.type)', expected 'root'")
    }
    guard r.expiryDate != nil else { throw TsukuError(.integrity, "\(what) has an invalid expiry '\(r.expires)'") }
    for role in Role.allCases {
      guard let rk = r.roles[role.rawValue] else {
        if !Role.required.contains(role) { continue }
        throw TsukuError(.integrity, "\(what) has no '\(role.rawValue)' role")
      }
      if rk.threshold < 1 || rk.threshold > Set(rk.keyids).count {
        throw TsukuError(
          .integrity, "\(what) sets the '\(role.rawValue)' threshold to \(rk.threshold) with \(rk.keyids.count) keys")
      }
    }
    if (r.roles[Role.log.rawValue] == nil) != (r.log_origin == nil) {
      throw TsukuError(.integrity, "\(what) must name a log origin exactly when it has a 'log' role")
    }
    if let o = r.log_origin, o.isEmpty || o.utf8.count > 256 || o.unicodeScalars.contains(where: { $0.value < 0x21 || $0 == "+" }) {
      throw TsukuError(.integrity, "\(what) has an invalid log origin '\(o.prefix(64))'")
    }
    return r
  }
}

/// Encoding of signed documents, shared by the CLI and tests.
public enum RootDocuments {
  public static func encode<T: Encodable>(_ v: T) -> Data { JSON.encode(v) }
  /// An envelope as a file: pretty JSON and a final newline.
  public static func encode(_ env: Envelope) -> Data { JSON.encode(env, pretty: true) + Data("\n".utf8) }
}

// glibc declares memmem only under _GNU_SOURCE, which the Glibc module does not set.
@_silgen_name("memmem")
func findBytes(_ hay: UnsafeRawPointer, _ hayLength: Int, _ needle: UnsafeRawPointer, _ needleLength: Int)
  -> UnsafeMutableRawPointer?
