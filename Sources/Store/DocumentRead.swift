import Foundation

/// What a conditional document read found.
public enum DocumentRead: Sendable, Equatable {
  /// The document still has the ETag the caller gave.
  case notModified
  /// The store has no document by that name.
  case absent
  /// The current bytes, and their ETag for the next conditional read (nil if the store gave none).
  case found(Data, etag: String?)
}

extension DocumentRead {
  /// The bytes found, nil otherwise.
  var data: Data? { if case .found(let d, _) = self { d } else { nil } }
  var etag: String? { if case .found(_, let t) = self { t } else { nil } }
}
