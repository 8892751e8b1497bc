import Foundation
import Synchronization

/// The reference backend: everything in memory, behind one lock. Tests use it as the model
/// the other backends must agree with.
public final class MemoryStore: ObjectStore {
  private struct State {
    var objects: [ObjectID: Data] = [:]
    var documents: [DocumentName: Data] = [:]
    /// When each blob entered its area.
    var written: [ObjectID: Date] = [:]
    var quarantine: [ObjectID: (data: Data, at: Date)] = [:]
  }
  private let state = Mutex(State())
  public let location: String

  public init(location: String = "memory:") { self.location = location }

  public func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    guard let data = state.withLock({ $0.objects[id] }) else { throw missing(id) }
    return try verified(data, as: id, maxSize: maxSize)
  }

  public func contains(_ id: ObjectID) throws -> Bool { state.withLock { $0.objects[id] != nil } }

  public func list() throws -> [ObjectID] { state.withLock { Array($0.objects.keys) }.sorted() }

  public func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    guard let data = state.withLock({ $0.documents[name] }) else { return nil }
    if data.count > maxSize { throw tooLarge("'\(name.path)'", size: data.count, max: maxSize) }
    return data
  }

  @discardableResult
  public func apply(_ change: StoreChange) throws -> ApplyReport { try apply(change, sources: []) }

  /// Sources are read without holding the lock (a source may read from this store): the
  /// precondition is checked before and again after.
  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    let blobs = ChangeBlobs(change, sources: sources)
    let lacking = try state.withLock { s in
      try checkPrecondition(change.precondition, current: s.documents[.index], location: location)
      try checkCheckpointCondition(change.checkpoint, current: s.documents[.checkpoint], location: location)
      return blobs.indices.filter { s.objects[blobs[$0].id] == nil }
    }
    // Present sources are not read; the others are all read before anything is stored.
    let fresh = try lacking.map { (blobs[$0].id, try blobs[$0].load()) }
    return try state.withLock { s in
      try checkPrecondition(change.precondition, current: s.documents[.index], location: location)
      try checkCheckpointCondition(change.checkpoint, current: s.documents[.checkpoint], location: location)
      var report = ApplyReport()
      report.objectsPresent = blobs.duplicates + blobs.count - fresh.count
      for (id, data) in fresh {
        if s.objects[id] != nil {
          report.objectsPresent += 1
          continue
        }
        s.objects[id] = data
        s.written[id] = Date()
        report.objectsWritten += 1
        report.bytesWritten += data.count
      }
      for (name, data) in change.orderedDocuments {
        if name.isWriteOnce, !(try writeOnceNeeded(name, existing: s.documents[name], new: data, location: location)) {
          continue
        }
        s.documents[name] = data
        report.documentsWritten += 1
      }
      for name in change.partialTileRemovals { s.documents[name] = nil }
      return report
    }
  }

  public func remove(_ ids: [ObjectID]) throws {
    state.withLock { s in
      for id in ids {
        s.objects[id] = nil
        s.written[id] = nil
      }
    }
  }

  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    state.withLock { s in
      switch area {
      case .live: s.objects.map { StoredObject(id: $0.key, size: $0.value.count, modified: dated ? s.written[$0.key] : nil) }
      case .quarantine: s.quarantine.map { StoredObject(id: $0.key, size: $0.value.data.count, modified: dated ? $0.value.at : nil) }
      }
    }.sorted { $0.id < $1.id }
  }

  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if from == to { return 0 }
    let now = Date()
    return state.withLock { s in
      var moved = 0
      for id in Set(ids) {
        if from == .live, let d = s.objects.removeValue(forKey: id) {
          s.written[id] = nil
          s.quarantine[id] = (d, now)
          moved += 1
        } else if from == .quarantine, let q = s.quarantine.removeValue(forKey: id) {
          s.objects[id] = q.data
          s.written[id] = now
          moved += 1
        }
      }
      return moved
    }
  }

  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if area == .live { return try remove(ids) }
    state.withLock { s in for id in ids { s.quarantine[id] = nil } }
  }

  /// Test hook: dates a blob of an area, as if it had been written at `date`.
  public func setModified(_ id: ObjectID, in area: ObjectArea, to date: Date) {
    state.withLock { s in
      switch area {
      case .live: if s.objects[id] != nil { s.written[id] = date }
      case .quarantine: if let q = s.quarantine[id] { s.quarantine[id] = (q.data, date) }
      }
    }
  }

  /// Test hook: replaces a blob's bytes without renaming it, as a corrupt disk or a lying
  /// server would.
  public func tamper(_ id: ObjectID, with data: Data) {
    state.withLock { $0.objects[id] = data }
  }

  /// Test hook: replaces a document's bytes.
  public func setDocument(_ name: DocumentName, _ data: Data?) {
    state.withLock { $0.documents[name] = data }
  }
}

/// Checks a change's precondition against the current `index.json` bytes.
func checkPrecondition(_ p: StoreChange.Precondition, current: Data?, location: String) throws {
  switch p {
  case .none: return
  case .indexAbsent:
    if current != nil {
      throw TsukuError(.conflict, "'\(location)' already has an index.json; someone published first")
    }
  case .indexHash(let expected):
    let actual = current.map { SHA256.hash($0) }
    if actual != expected {
      throw TsukuError(
        .conflict,
        "index.json in '\(location)' changed while publishing (expected '\(expected.hex.prefix(12))', found '\(actual?.hex.prefix(12) ?? "none")'); nothing was published, run it again"
      )
    }
  }
}

/// Whether a write-once document (a log tile, a change list) still has to be written: not when
/// the store holds the same bytes; a `.conflict` when it holds others (a racing writer got
/// there first, and this change must write nothing after it, its `index.json` least of all).
func writeOnceNeeded(_ name: DocumentName, existing: Data?, new: Data, location: String) throws -> Bool {
  guard let existing else { return true }
  if existing == new { return false }
  throw TsukuError(
    .conflict,
    "'\(name.path)' in '\(location)' already holds other content (another publisher appended to the log first); nothing more was written, run it again"
  )
}
