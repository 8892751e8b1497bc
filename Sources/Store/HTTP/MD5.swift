import Foundation

/// MD5 (RFC 1321), only to talk to S3: `Content-MD5` on uploads makes the bucket check what it
/// received, and a single-part upload's ETag is the MD5 of what it stored. Never used for
/// integrity of our own data, which is SHA-256. Computed by OpenSSL (`Crypto.swift`).
enum MD5 {
  /// The 16-byte digest.
  static func digest(_ data: Data) -> [UInt8] { data.withUnsafeBytes { opensslMD5($0) } }

  static func hex(_ data: Data) -> String { digest(data).map { String(format: "%02x", $0) }.joined() }
  static func base64(_ data: Data) -> String { Data(digest(data)).base64EncodedString() }
}
