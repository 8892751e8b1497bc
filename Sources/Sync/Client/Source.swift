import Foundation
import Store

/// A source as the client reads it: every request timed and counted under its backend's
/// label. The client uses only the read side of a store through it (`get`, `getMany`,
/// `fetch(into:)`, `readDocument`, `revision`), and names the type only here.
typealias Source = MeteredSource

extension MeteredSource {
  /// The revision the source reads at (a git source's commit), for the audit trail.
  var revision: String? { store.revision }
  /// The revision a blob was read from (for a git source, perhaps an older commit).
  func revision(of id: ObjectID) -> String? { store.revision(of: id) }
}
