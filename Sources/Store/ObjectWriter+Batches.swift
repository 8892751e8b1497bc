import Foundation

extension ObjectWriter {
  /// The generic `apply(_:sources:)`: the precondition is checked before anything is written;
  /// then the sources the store lacks (by `present`) go in batches, each one `apply`; then
  /// `change` itself (its objects, documents and precondition) as the last one. A backend
  /// that makes one commit per change (git) or can check presence in bulk implements it itself.
  public func applyInBatches(
    _ change: StoreChange, sources: [BlobSource], present: (BlobSource) throws -> Bool = { _ in false }
  ) throws -> ApplyReport {
    if sources.isEmpty { return try apply(change) }
    if change.precondition != .none {
      try checkPrecondition(
        change.precondition, current: try readDocument(.index, maxSize: Int.max), location: location)
    }
    if change.checkpoint != .any {
      try checkCheckpointCondition(
        change.checkpoint, current: try readDocument(.checkpoint, maxSize: Int.max), location: location)
    }
    var report = ApplyReport()
    let unique = firstCopies(sources)
    report.objectsPresent = sources.count - unique.count
    var lacking = [Int32]()
    for i in unique {
      if try present(sources[Int(i)]) { report.objectsPresent += 1 } else { lacking.append(i) }
    }
    try BlobSource.batches(lacking.lazy.map { sources[Int($0)] }) { batch in
      report.add(try apply(StoreChange(objects: batch.map(\.1), message: change.message, time: change.time)))
    }
    report.add(try apply(change))
    return report
  }

  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    try applyInBatches(change, sources: sources) { try contains($0.id) }
  }
}
