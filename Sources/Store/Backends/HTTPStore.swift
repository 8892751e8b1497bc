import Foundation

/// The store layout read anonymously over `https://HOST/PREFIX` (a public bucket, a CDN in
/// front of one) or `http://` (a local mirror): reads as `S3Store` does (`RemoteStore`), and
/// nothing else. Plain HTTP has no listing and the store is read-only: publish to the bucket
/// behind it with an `s3://` URL (`StoreURL.open` refuses, see `ReadOnlyHTTPStore`).
public final class HTTPStore: RemoteStore, @unchecked Sendable {
  /// The base URL, without a trailing `/`.
  public let baseURL: String

  public init(baseURL: String, transport: any HTTPTransport) {
    var base = baseURL
    while base.hasSuffix("/") { base.removeLast() }
    self.baseURL = base
    let root = base
    super.init(location: root, transport: transport, signer: nil) { root + "/" + $0 }
  }
}
