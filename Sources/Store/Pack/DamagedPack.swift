/// A cached pack whose table did not check out (bad header, an entry outside the pack, ids
/// out of order), set aside so that it blocks nothing: it is moved to `packs/damaged/` under
/// the store (removed when it cannot be moved), no reader sees it any more, and what it held
/// is fetched again when needed. A store notes each one for its owner to report
/// (`DirectoryStore.takeDamagedPacks`).
public struct DamagedPack: Sendable {
  /// Where the pack was.
  public var path: String
  /// Where it was moved to; nil when it was removed.
  public var movedTo: String?
  /// Why it was refused.
  public var error: TsukuError
  /// The ids its table still named (as far as the file allowed): the blobs it held.
  public var blobs: [ObjectID]
}
