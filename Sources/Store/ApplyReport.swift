import Foundation

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

extension ApplyReport {
  /// Adds the counts of `other` (and takes its commit, if it made one).
  public mutating func add(_ other: ApplyReport) {
    objectsWritten += other.objectsWritten
    objectsPresent += other.objectsPresent
    bytesWritten += other.bytesWritten
    documentsWritten += other.documentsWritten
    objectsPruned += other.objectsPruned
    commit = other.commit ?? commit
  }
}
