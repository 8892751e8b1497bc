import Foundation

/// What a writing command gets for an `https://` URL (`StoreURL.open`): the reads of an
/// `HTTPStore`, and a refusal for everything that writes or lists, given when the command first
/// tries it. The refusal comes then and not at open time because commands read first and may
/// stop for their own reasons before writing (a store that already has a root, `--stage`,
/// which only reads the target), and those outcomes stay what they are.
final class ReadOnlyHTTPStore: ObjectStore {
  let http: HTTPStore
  init(_ http: HTTPStore) { self.http = http }

  var location: String { http.location }
  func get(_ id: ObjectID, maxSize: Int) throws -> Data { try http.get(id, maxSize: maxSize) }
  func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data] { try http.getMany(wanted) }
  func fetch(into wanted: [(id: ObjectID, maxSize: Int, sink: any BodySink)]) throws -> [Bool] {
    try http.fetch(into: wanted)
  }
  func contains(_ id: ObjectID) throws -> Bool { try http.contains(id) }
  func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? { try http.readDocument(name, maxSize: maxSize) }
  func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    try http.readDocument(name, maxSize: maxSize, ifNoneMatch: etag)
  }

  func list() throws -> [ObjectID] {
    throw TsukuError(.usage, "'\(location)' cannot list its blobs: an https store has no listing (use its s3:// URL)")
  }

  func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] { _ = try list(); return [] }

  @discardableResult
  func apply(_ change: StoreChange) throws -> ApplyReport { throw readOnly() }
  func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport { throw readOnly() }

  func remove(_ ids: [ObjectID]) throws {
    if !ids.isEmpty { throw readOnly() }
  }

  @discardableResult
  func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if ids.isEmpty { return 0 }
    throw readOnly()
  }

  func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if !ids.isEmpty { throw readOnly() }
  }

  private func readOnly() -> TsukuError {
    TsukuError(.usage, "'\(location)' is read-only: publish to its bucket with an s3:// URL")
  }
}
