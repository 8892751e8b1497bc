import Foundation

/// A whole store: reading (`ObjectReader`), writing (`ObjectWriter`) and listing and retention
/// (`ObjectRetention`), as a directory, a git history, memory and a bucket are. Writing commands
/// open one with `StoreURL.open`; readers need only `ObjectReader` (`StoreURL.openReader`).
public protocol ObjectStore: ObjectWriter, ObjectRetention {}

extension ObjectStore {
  /// Default: `.live` is `remove`; other areas are refused.
  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if area == .live { return try remove(ids) }
    if ids.isEmpty { return }
    throw cannotManage("delete blobs from its quarantine")
  }
}
