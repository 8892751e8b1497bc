import Foundation
import Store

/// The state of a registry a maintainer changes: its newest root and its current index.
public struct RegistryHead: Sendable {
  public let store: any ObjectStore
  public let root: TrustedRoot
  public let index: VerifiedIndex?

  /// Reads and verifies (signatures, not freshness) what `store` holds now.
  public init(_ store: any ObjectStore) throws {
    self.store = store
    root = try Publisher.currentRoot(of: store)
    index = try Publisher.currentIndex(of: store, root: root)
  }

  init(store: any ObjectStore, root: TrustedRoot, index: VerifiedIndex?) {
    self.store = store
    self.root = root
    self.index = index
  }

  /// What a change to this store requires `index.json` still to be: the bytes read here.
  public var precondition: StoreChange.Precondition {
    index.map { .indexHash(SHA256.hash($0.bytes)) } ?? .indexAbsent
  }

  /// The current index, for a change signed by `keys` in `role`: refused when there is none
  /// yet, or when a key is not one of the role's.
  func indexToChange(signedBy keys: [SigningKey], as role: Role) throws -> VerifiedIndex {
    guard let index else {
      throw TsukuError(.usage, "'\(store.location)' has no index.json yet; publish one first")
    }
    try IndexCommit.checkSigners(keys, role: role, root: root)
    return index
  }
}
