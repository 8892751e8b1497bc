import Foundation

/// The write side of a store: blobs and documents go in through `apply`, which is atomic per
/// name and writes `index.json` last; `remove` deletes blobs. A read-only remote (plain HTTPS)
/// is an `ObjectReader` only.
public protocol ObjectWriter: ObjectReader {
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
}
