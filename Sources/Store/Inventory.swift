import Foundation

/// Where blobs sit in the store layout. Readers only ever use `.live`; `.quarantine` is where
/// retention (`tsuku registry gc`) parks blobs that no kept index references, one run before it
/// deletes them, so a mistake can still be undone by moving them back.
public enum ObjectArea: String, Sendable, CaseIterable, Codable {
  /// `objects/sha256/<ab>/<64 hex>`: the blobs clients read.
  case live
  /// `quarantine/sha256/<ab>/<64 hex>`: blobs waiting to be deleted; no reader looks here.
  case quarantine

  /// The folder of the area in the layout.
  public var folder: String {
    switch self {
    case .live: "objects/sha256"
    case .quarantine: "quarantine/sha256"
    }
  }

  /// The layout path of a blob in this area.
  public func path(_ id: ObjectID) -> String { "\(folder)/\(id.fanout)/\(id.hex)" }
}

/// One blob as a store's listing shows it: its name, its stored size (not verified: a listing
/// does not read the bytes) and when it was put in its area.
public struct StoredObject: Sendable, Equatable, Hashable {
  public var id: ObjectID
  public var size: Int
  /// When the blob entered its area: the file's modification time (directory), the object's
  /// `LastModified` (bucket), the committer time of the oldest commit of the unbroken run of
  /// commits that hold it at that path, counted back from the tip (git), the time of the write
  /// (memory). Nil when the listing was asked for without dates or the store cannot tell.
  public var modified: Date?

  public init(id: ObjectID, size: Int, modified: Date?) {
    self.id = id
    self.size = size
    self.modified = modified
  }
}
