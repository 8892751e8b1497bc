import Foundation

/// The store layout read anonymously over `https://HOST/PREFIX` (a public bucket, a CDN in
/// front of one) or `http://` (a local mirror).
///
/// - Reads as `S3Store` does: verified `get`, parallel `getMany`, and a conditional GET of
///   `index.json` (`readDocument(_:maxSize:ifNoneMatch:)`), so an unchanged index costs one 304.
/// - `list` and `inventory` are not supported (plain HTTP has no listing) and throw `.usage`; so
///   do `apply`, `move` and `remove`: the store is read-only, publish to the bucket behind it
///   with an `s3://` URL.
public final class HTTPStore: ObjectStore {
  /// The base URL, without a trailing `/`.
  public let baseURL: String
  public let transport: any HTTPTransport
  public var location: String { baseURL }
  let reader: RemoteReader

  public init(baseURL: String, transport: any HTTPTransport) {
    var base = baseURL
    while base.hasSuffix("/") { base.removeLast() }
    self.baseURL = base
    self.transport = transport
    let root = base
    reader = RemoteReader(location: root, transport: transport, signing: nil) { root + "/" + $0 }
  }

  /// Requests made so far, retries included.
  public var requestCount: Int { transport.requestCount }

  public func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    guard let data = try reader.fetch(id.path, maxSize: maxSize) else { throw missing(id) }
    return try verified(data, as: id, maxSize: maxSize)
  }

  public func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data] {
    try fetchVerified(wanted, reader: reader)
  }

  public func fetch(into wanted: [(id: ObjectID, maxSize: Int, sink: any BodySink)]) throws -> [Bool] {
    try fetchVerified(into: wanted, reader: reader)
  }

  public func contains(_ id: ObjectID) throws -> Bool { try reader.size(of: [id.path])[0] != nil }

  public func list() throws -> [ObjectID] {
    throw TsukuError(.usage, "'\(location)' cannot list its blobs: an https store has no listing (use its s3:// URL)")
  }

  public func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    try reader.fetch(name.path, maxSize: maxSize)
  }

  public func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    try reader.readDocument(name, maxSize: maxSize, ifNoneMatch: etag)
  }

  @discardableResult
  public func apply(_ change: StoreChange) throws -> ApplyReport { throw readOnly() }
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport { throw readOnly() }

  public func remove(_ ids: [ObjectID]) throws {
    if !ids.isEmpty { throw readOnly() }
  }

  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] { _ = try list(); return [] }

  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if ids.isEmpty { return 0 }
    throw readOnly()
  }

  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if !ids.isEmpty { throw readOnly() }
  }

  private func readOnly() -> TsukuError {
    TsukuError(.usage, "'\(location)' is read-only: publish to its bucket with an s3:// URL")
  }
}
