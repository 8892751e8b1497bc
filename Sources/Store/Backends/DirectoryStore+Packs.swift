extension DirectoryStore {
  /// Checks the table of every pack (header, entries inside the pack, ids in strict order)
  /// and sets aside the damaged ones (`DamagedPack`): a cache runs it before a sync trusts
  /// what its packs hold, so a damaged pack's blobs are fetched again rather than stopping
  /// the sync. Reads only the tables (at 100K recipes, 4.4 MB a slice at a time).
  @discardableResult
  public func checkPacks() -> [DamagedPack] { packs.checkAll() }

  /// The packs set aside since the last call, by `checkPacks` or by any operation that found
  /// one damaged (a merge, a removal): for the store's owner to report.
  public func takeDamagedPacks() -> [DamagedPack] { packs.takeDamaged() }

  /// The folder damaged packs are moved to.
  public var damagedPacksDir: String { packs.damagedDir }
}

extension DirectoryStore {
  /// Sets aside the pack at `path`, found damaged by the caller (see `DamagedPack`).
  @discardableResult
  public func setAside(pack path: String, _ error: TsukuError) -> DamagedPack { packs.quarantine(path, error) }
}
