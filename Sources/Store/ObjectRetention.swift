import Foundation

/// The listing and retention side of a store (`tsuku registry gc`, bucket usage): what blobs
/// it holds, with sizes and dates, and moving them in and out of the quarantine.
public protocol ObjectRetention: ObjectReader {
  /// Every blob name the store holds.
  func list() throws -> [ObjectID]

  /// Every blob in `area` with its stored size and, when `dated`, when it entered the area
  /// (`StoredObject.modified`). Used for bucket usage and retention; stores without a listing
  /// refuse with `.usage`.
  func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject]

  /// Moves blobs from one area to the other (into the quarantine, or back), dated now in the
  /// new area; blobs absent from `from` are skipped. Returns how many were moved. A git store
  /// makes one commit (history keeps the blobs either way).
  @discardableResult
  func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int

  /// Deletes blobs from an area; absent ones are ignored. For `.live` this is `remove`.
  func remove(_ ids: [ObjectID], from area: ObjectArea) throws
}

extension ObjectRetention {
  /// The refusal of a store that cannot list or move blobs (wrappers).
  public func cannotManage(_ what: String) -> TsukuError {
    TsukuError(.usage, "'\(location)' cannot \(what): only directory, git and s3:// stores can")
  }

  /// Default: this store cannot list its blobs with sizes.
  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    throw cannotManage("list its blobs with their sizes")
  }

  /// Default: this store cannot move blobs between areas.
  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if ids.isEmpty { return 0 }
    throw cannotManage("move blobs to or from its quarantine")
  }
}
