import Foundation

/// The read side of a content-addressed store, whatever holds it: a directory, a git history,
/// memory, a bucket, or an anonymous HTTPS mirror. Every backend has the same layout and the
/// same behaviour:
///
/// - `get` returns the bytes of a blob only if they hash to its name and are no longer than
///   `maxSize` (the size the signed index declares); otherwise it throws `.integrity`.
///   An absent blob throws `.notFound`.
/// - No backend is trusted: callers verify documents against signatures, and blobs are
///   verified here against their names.
///
/// A client reads through this protocol only; `ObjectWriter` adds writing and
/// `ObjectRetention` listing, and `ObjectStore` is all three.
public protocol ObjectReader: AnyObject, Sendable {
  /// The URL or path this store was opened from, for messages.
  var location: String { get }

  /// The revision this store reads at, for the audit trail: a git store's commit; nil for
  /// stores without revisions.
  var revision: String? { get }

  /// The revision a blob was read from: for a git store, the commit of its history that still
  /// held a blob which has left the tip, else `revision`.
  func revision(of id: ObjectID) -> String?

  /// The verified bytes of a blob.
  func get(_ id: ObjectID, maxSize: Int) throws -> Data

  /// Whether the store holds a blob by that name (without verifying it).
  func contains(_ id: ObjectID) throws -> Bool

  /// The bytes of a document, or nil if the store has none by that name. Bytes beyond
  /// `maxSize` are refused with `.integrity` before anything is parsed.
  func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data?

  /// A document read conditionally: `.notModified` when `etag` (from an earlier `.found`)
  /// still names the current content, so a sync with nothing new costs one request (a 304 over
  /// HTTP). Backends without ETags use `"sha256:<hex of the bytes>"` (quoted) as the tag.
  func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead

  /// Fetches many blobs, verified as `get` does; missing ones are left out of the result, a
  /// corrupt one throws. Remote backends overlap the requests.
  func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data]

  /// Fetches blobs into sinks, each blob's bytes handed over as they arrive (a pack written to
  /// disk without being held in memory), verified as `get` does once the last byte is in: a
  /// corrupt one throws (the sink has then seen bytes it must drop). Returns, in order, whether
  /// each was found. Remote backends overlap the requests.
  func fetch(into wanted: [(id: ObjectID, maxSize: Int, sink: any BodySink)]) throws -> [Bool]
}

extension ObjectReader {
  /// Default: no revisions.
  public var revision: String? { nil }

  /// Default: the store's own revision.
  public func revision(of id: ObjectID) -> String? { revision }

  /// The conditional read for backends without ETags: the tag is the SHA-256 of the bytes.
  public func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    guard let data = try readDocument(name, maxSize: maxSize) else { return .absent }
    let tag = "\"sha256:\(SHA256.hash(data).hex)\""
    return tag == etag ? .notModified : .found(data, etag: tag)
  }

  /// Fetches many blobs one after the other; a backend that can overlap requests overrides
  /// this. Missing blobs are left out of the result; a corrupt one throws.
  public func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data] {
    var out = [ObjectID: Data]()
    for (id, max) in wanted {
      do { out[id] = try get(id, maxSize: max) } catch let e as TsukuError where e.code == .notFound { continue }
    }
    return out
  }

  /// `fetch(into:)` one blob after the other through `get`: for backends that read whole blobs
  /// anyway (a directory, a git history, memory).
  public func fetch(into wanted: [(id: ObjectID, maxSize: Int, sink: any BodySink)]) throws -> [Bool] {
    try wanted.map { w in
      let data: Data
      do { data = try get(w.id, maxSize: w.maxSize) } catch let e as TsukuError where e.code == .notFound { return false }
      w.sink.restart()
      if !data.withUnsafeBytes({ w.sink.write($0) }) {
        throw w.sink.refusal ?? TsukuError(.integrity, "blob '\(w.id.hex)' from '\(location)' was refused")
      }
      return true
    }
  }

  /// The error every backend throws for a blob whose bytes do not hash to its name.
  public func corrupt(_ id: ObjectID, actual: ObjectID) -> TsukuError {
    TsukuError(
      .integrity, "blob '\(id.hex)' from '\(location)' is corrupt: its bytes hash to '\(actual.hex)'",
      reason: .hashMismatch)
  }

  public func missing(_ id: ObjectID) -> TsukuError {
    TsukuError(.notFound, "blob '\(id.hex)' not found in '\(location)'")
  }

  public func tooLarge(_ what: String, size: Int, max: Int) -> TsukuError {
    TsukuError(
      .integrity, "\(what) from '\(location)' is \(size) bytes, more than the \(max) allowed", reason: .tooLarge)
  }

  /// Verifies bytes against a name and a declared size; shared by every backend.
  public func verified(_ data: Data, as id: ObjectID, maxSize: Int) throws -> Data {
    if data.count > maxSize { throw tooLarge("blob '\(id.hex)'", size: data.count, max: maxSize) }
    let actual = SHA256.hash(data)
    if actual != id { throw corrupt(id, actual: actual) }
    return data
  }
}
