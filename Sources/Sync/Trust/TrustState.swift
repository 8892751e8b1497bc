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
  public init() {}
}
