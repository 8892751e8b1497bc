import Foundation

/// A mutable, named document of the store layout. Only these names exist besides the blobs, so
/// no caller can make a backend read or write any other path.
public enum DocumentName: Hashable, Sendable, CustomStringConvertible {
  /// `index.json`: the signed envelope, the only name whose content changes.
  case index
  /// `root/<N>.root.json`: root version N of the trust chain (immutable once written).
  case root(Int)
  /// `index/<N>.index.json`: the `index.json` that first carried index version N, kept by
  /// publish so retention can keep the blobs of the last K versions (format.md §1).
  case archivedIndex(Int)

  /// The path inside the layout.
  public var path: String {
    switch self {
    case .index: "index.json"
    case .root(let n): "root/\(n).root.json"
    case .archivedIndex(let n): "index/\(n).index.json"
    }
  }

  public var description: String { path }

  /// Parses a layout path back into a name; nil for anything that is not one.
  public init?(path: String) {
    if path == "index.json" {
      self = .index
      return
    }
    let archived = path.hasPrefix("index/") && path.hasSuffix(".index.json")
    guard archived || (path.hasPrefix("root/") && path.hasSuffix(".root.json")) else { return nil }
    let digits = archived ? path.dropFirst(6).dropLast(11) : path.dropFirst(5).dropLast(10)
    guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
      digits.first != "0", let n = Int(digits)
    else { return nil }
    self = archived ? .archivedIndex(n) : .root(n)
  }
}

/// What a publisher or a sync writes in one go. Blobs first, then documents, `index.json` last,
/// so a reader never sees an index that names a blob the store lacks.
public struct StoreChange: Sendable {
  /// What `index.json` must be before the change is applied; otherwise the store refuses
  /// with a `.conflict` error. This is how a publisher that lost a race finds out.
  public enum Precondition: Sendable, Equatable {
    case none
    case indexAbsent
    case indexHash(ObjectID)
  }

  public var objects: [Data]
  public var documents: [(DocumentName, Data)]
  public var precondition: Precondition
  /// A one-line description, used as the commit message by the git backend.
  public var message: String
  /// The author and committer time of the commit the git backend makes (nil: now), so a
  /// replay of old snapshots keeps their dates. Other backends ignore it.
  public var time: Date?
  /// Retention for backends that keep history (git): when set, the committed tree keeps only
  /// these blobs and the change's own `objects`; every other `objects/` entry is dropped from
  /// the tree (history still holds it). Other backends ignore it: they delete with `remove`.
  public var keepOnly: Set<ObjectID>?

  public init(
    objects: [Data] = [], documents: [(DocumentName, Data)] = [], precondition: Precondition = .none,
    message: String = "update registry", time: Date? = nil, keepOnly: Set<ObjectID>? = nil
  ) {
    self.objects = objects
    self.documents = documents
    self.precondition = precondition
    self.message = message
    self.time = time
    self.keepOnly = keepOnly
  }

  /// Documents in write order: every root before `index.json`.
  public var orderedDocuments: [(DocumentName, Data)] {
    documents.filter { $0.0 != .index } + documents.filter { $0.0 == .index }
  }
}

/// What a conditional document read found.
public enum DocumentRead: Sendable, Equatable {
  /// The document still has the ETag the caller gave.
  case notModified
  /// The store has no document by that name.
  case absent
  /// The current bytes, and their ETag for the next conditional read (nil if the store gave none).
  case found(Data, etag: String?)
}

/// What applying a change did.
public struct ApplyReport: Sendable, Equatable {
  public var objectsWritten = 0
  public var objectsPresent = 0
  public var bytesWritten = 0
  public var documentsWritten = 0
  /// Blobs dropped from the committed tree by `StoreChange.keepOnly` (git).
  public var objectsPruned = 0
  /// The commit made, for backends that make one (git).
  public var commit: String?
  public init() {}
}

/// One content-addressed store, whatever holds it: a directory, a git history, memory (and a
/// bucket). Every backend has the same layout and the same behaviour:
///
/// - `get` returns the bytes of a blob only if they hash to its name and are no longer than
///   `maxSize` (the size the signed index declares); otherwise it throws `.integrity`.
///   An absent blob throws `.notFound`.
/// - Writes go through `apply`, which is atomic per name and writes `index.json` last.
/// - No backend is trusted: callers verify documents against signatures, and blobs are
///   verified here against their names.
public protocol ObjectStore: AnyObject, Sendable {
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

  /// Every blob name the store holds.
  func list() throws -> [ObjectID]

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

  /// Writes the blobs the store lacks, then the documents, `index.json` last.
  @discardableResult
  func apply(_ change: StoreChange) throws -> ApplyReport

  /// `apply` with more blobs given as sources: read in bounded batches as they are written
  /// (never all at once), and not read at all when the store already has them. The same order
  /// and precondition as `apply` (every blob, then the documents, `index.json` last; nothing
  /// written by a publisher that lost the race); a git store makes one commit.
  @discardableResult
  func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport

  /// Deletes blobs (a corrupt cached copy, an evicted or revoked one). Absent ones are ignored.
  func remove(_ ids: [ObjectID]) throws

  /// Every blob in `area` with its stored size and, when `dated`, when it entered the area
  /// (`StoredObject.modified`). Used for bucket usage and retention; stores without a listing
  /// (plain HTTPS) refuse with `.usage`.
  func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject]

  /// Moves blobs from one area to the other (into the quarantine, or back), dated now in the
  /// new area; blobs absent from `from` are skipped. Returns how many were moved. A git store
  /// makes one commit (history keeps the blobs either way).
  @discardableResult
  func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int

  /// Deletes blobs from an area; absent ones are ignored. For `.live` this is `remove`.
  func remove(_ ids: [ObjectID], from area: ObjectArea) throws
}

extension ObjectStore {
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
      .integrity, "blob '\(id.hex)' from '\(location)' is corrupt: its bytes hash to '\(actual.hex)'", reason: .hashMismatch)
  }

  public func missing(_ id: ObjectID) -> TsukuError {
    TsukuError(.notFound, "blob '\(id.hex)' not found in '\(location)'")
  }

  public func tooLarge(_ what: String, size: Int, max: Int) -> TsukuError {
    TsukuError(.integrity, "\(what) from '\(location)' is \(size) bytes, more than the \(max) allowed", reason: .tooLarge)
  }

  /// Verifies bytes against a name and a declared size; shared by every backend.
  public func verified(_ data: Data, as id: ObjectID, maxSize: Int) throws -> Data {
    if data.count > maxSize { throw tooLarge("blob '\(id.hex)'", size: data.count, max: maxSize) }
    let actual = SHA256.hash(data)
    if actual != id { throw corrupt(id, actual: actual) }
    return data
  }
}
