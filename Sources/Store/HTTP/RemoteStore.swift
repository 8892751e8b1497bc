import Foundation

/// The read side of a store over HTTP, shared by `S3Store` (signed) and `HTTPStore`
/// (anonymous): `get` verifies bytes against the name and the declared size (a longer body is
/// cut off as it arrives); `getMany` and `fetch(into:)` run in parallel, each blob hashed on
/// its way; `readDocument(_:maxSize:ifNoneMatch:)` is a conditional GET, so an unchanged
/// `index.json` costs one 304. Subclasses say where the layout is.
public class RemoteStore: ObjectReader, @unchecked Sendable {
  public let transport: any HTTPTransport
  public let location: String
  /// Requests, answers and errors; every property is immutable, so the class is `Sendable`.
  let reader: RemoteReader

  init(
    location: String, transport: any HTTPTransport, signer: RequestSigner?,
    urlFor: @escaping @Sendable (String) -> String
  ) {
    self.location = location
    self.transport = transport
    reader = RemoteReader(location: location, transport: transport, signer: signer, urlFor: urlFor)
  }

  /// Requests made so far, retries included.
  public var requestCount: Int { transport.requestCount }

  public func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    guard let data = try reader.fetch(id.path, maxSize: maxSize) else { throw missing(id) }
    return try verified(data, as: id, maxSize: maxSize)
  }

  /// One parallel batch, each blob verified.
  public func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data] {
    let got = try reader.fetchMany(wanted.map { ($0.0.path, $0.1) })
    var out = [ObjectID: Data]()
    for ((id, max), data) in zip(wanted, got) {
      if let data { out[id] = try verified(data, as: id, maxSize: max) }
    }
    return out
  }

  /// The blobs in parallel, each hashed on its way to its sink.
  public func fetch(into wanted: [(id: ObjectID, maxSize: Int, sink: any BodySink)]) throws -> [Bool] {
    let hashing = wanted.map { HashingSink($0.sink) }
    let found = try reader.fetchInto(zip(wanted, hashing).map { ($0.id.path, $0.maxSize, $1) })
    for (w, (h, got)) in zip(wanted, zip(hashing, found)) where got {
      let actual = h.digest()
      if actual != w.id { throw corrupt(w.id, actual: actual) }
    }
    return found
  }

  public func contains(_ id: ObjectID) throws -> Bool { try reader.size(of: [id.path])[0] != nil }

  public func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    try reader.fetch(name.path, maxSize: maxSize)
  }

  public func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    try reader.readDocument(name, maxSize: maxSize, ifNoneMatch: etag)
  }
}
