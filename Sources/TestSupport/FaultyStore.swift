import Foundation
import Store
import Synchronization

/// A store that fails the way a scripted source would: refused, timed out, 5xx, 404, or
/// corrupt bytes, counting every call. Wraps a real store for the calls it lets through.
public final class FaultyStore: ObjectStore {
  public enum Fault: Sendable {
    /// Every call throws `.unavailable` (connection refused, timeout, 5xx).
    case unavailable
    /// Every read answers "absent".
    case notFound
    /// Blobs come back with one byte flipped.
    case corrupt
    /// Passes everything through.
    case none
  }
  public let location: String
  private let inner: (any ObjectStore)?
  private let fault: Fault
  private let counter = Mutex(0)

  public init(_ fault: Fault, wrapping inner: (any ObjectStore)? = nil, location: String = "faulty:") {
    self.fault = fault
    self.inner = inner
    self.location = location
  }

  /// How many calls reached this store.
  public var calls: Int { counter.withLock { $0 } }

  private func enter() throws {
    counter.withLock { $0 += 1 }
    switch fault {
    case .unavailable: throw TsukuError(.unavailable, "GET '\(location)': connection refused")
    case .notFound, .corrupt, .none: return
    }
  }

  public func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    try enter()
    if fault == .notFound { throw missing(id) }
    guard let inner else { throw missing(id) }
    if fault == .corrupt {
      var d = try inner.get(id, maxSize: maxSize)
      if !d.isEmpty { d[d.startIndex] ^= 1 }
      return try verified(d, as: id, maxSize: maxSize)
    }
    return try inner.get(id, maxSize: maxSize)
  }

  public func contains(_ id: ObjectID) throws -> Bool {
    try enter()
    return fault == .notFound ? false : try inner?.contains(id) ?? false
  }

  public func list() throws -> [ObjectID] {
    try enter()
    return fault == .notFound ? [] : try inner?.list() ?? []
  }

  public func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    try enter()
    return fault == .notFound ? nil : try inner?.readDocument(name, maxSize: maxSize)
  }

  public func apply(_ change: StoreChange) throws -> ApplyReport {
    try enter()
    guard let inner else { throw TsukuError(.usage, "'\(location)' is read-only") }
    return try inner.apply(change)
  }

  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    try enter()
    guard let inner else { throw TsukuError(.usage, "'\(location)' is read-only") }
    return try inner.apply(change, sources: sources)
  }

  public func remove(_ ids: [ObjectID]) throws {
    try enter()
    try inner?.remove(ids)
  }

  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    try enter()
    return fault == .notFound ? [] : try inner?.inventory(area, dated: dated) ?? []
  }

  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    try enter()
    return try inner?.move(ids, from: from, to: to) ?? 0
  }

  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    try enter()
    try inner?.remove(ids, from: area)
  }
}
