import Foundation

/// Where a bucket is and how to address it, as `s3://BUCKET/PREFIX?endpoint=URL&region=R&style=S`
/// says (see `StoreURL`).
public struct S3Location: Sendable, Equatable {
  public var bucket: String
  /// The folder in the bucket that holds the layout; empty for the bucket's root.
  public var prefix: String
  /// `scheme://host[:port]`; nil for AWS S3 in `region`.
  public var endpoint: String?
  public var region: String
  /// Virtual-host addressing (`BUCKET.host`) instead of path style (`host/BUCKET`).
  public var virtualHost: Bool

  public init(
    bucket: String, prefix: String = "", endpoint: String? = nil, region: String = "auto", virtualHost: Bool? = nil
  ) {
    self.bucket = bucket
    self.prefix = prefix
    self.endpoint = endpoint
    self.region = region
    self.virtualHost = virtualHost ?? (endpoint == nil)
  }

  /// `s3://bucket/prefix`, for messages.
  public var url: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }

  /// The URL of the bucket's root, without a trailing `/`.
  var bucketURL: String {
    let ep = endpoint ?? "https://s3.\(region).amazonaws.com"
    if !virtualHost { return ep + "/" + bucket }
    let scheme = ep.hasPrefix("http://") ? "http://" : "https://"
    return scheme + bucket + "." + ep.dropFirst(scheme.count)
  }

  /// The key of a layout path.
  func key(_ path: String) -> String { prefix.isEmpty ? path : prefix + "/" + path }

  func url(_ path: String) -> String { bucketURL + "/" + S3Protocol.encode(key(path), keepSlash: true) }
}
