import Foundation
import Store

/// What a client has trusted so far. Kept outside the cache, so clearing the cache never
/// rolls trust back.
public struct TrustState: Codable, Equatable, Sendable {
  public var format = Format.current
  public var index_version = 0
  public var index_payload_sha256: ObjectID?
  public var revocation_version = 0
  public var revocation_payload_sha256: ObjectID?
  /// The root version these versions were reached under; when the saved root is newer (a
  /// crash between the two writes of a rotation), the versions are reset as the walk would.
  public var root_version: Int?
  /// The transparency log checkpoint trusted last (tree size, base64 root hash): the next one
  /// must extend it. Kept across root rotations: a log never starts again.
  public var log_size: UInt64?
  public var log_root: String?
  public init() {}

  /// The state as saved beside a root of `rootVersion`: when the root is newer than the one
  /// these versions were reached under (a crash between the two writes of a rotation), the
  /// versions start again, as the root walk would have reset them.
  public func reconciled(withRoot rootVersion: Int) -> TrustState {
    guard let v = root_version, v < rootVersion else { return self }
    var fresh = TrustState()
    fresh.root_version = rootVersion
    (fresh.log_size, fresh.log_root) = (log_size, log_root)
    return fresh
  }
}
