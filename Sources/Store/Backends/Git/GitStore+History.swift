import Foundation

/// Blobs that have left the tip, served from a window of history (see `GitHistory.swift`).
extension GitStore {
  /// Also serves blobs that have left the tip, from the commits of the last `days` days of
  /// history (counted back from the newest commit's date, not from today, so an old clone
  /// keeps working offline; 0 means all history). `list` stays tip-only.
  ///
  /// The first such lookup builds a map from sha256 to git blob over that window, once per
  /// tip: it walks the commits newest first and reads each commit's `objects/sha256/<fan>/`
  /// folders, skipping folders whose git tree was already read and keeping only the blobs a
  /// folder adds to its version read before. It loads at most 2^20 tree entries in all and
  /// 2^15 from the versions of one fan-out folder; a folder (or a window) whose trees hold
  /// more is searched only back to where the limit was reached, and the not-found message says
  /// so. Time and memory are thus linear in the commits of the window, whatever the shape of
  /// its trees. With a `cacheDirectory` the map is kept there (one
  /// file per repository, subfolder, window and tip, written atomically) and the next process
  /// only memory-maps it. A blob found there is size-checked before it is loaded and verified
  /// like one at the tip; a map file that leads to a bad blob is rebuilt once before the blob
  /// is refused.
  public func enableHistory(days: Int, cacheDirectory: String?) {
    enableHistory(days: days, cacheDirectory: cacheDirectory, limits: .standard)
  }

  /// `enableHistory` with other limits on the tree entries a walk loads (for tests).
  func enableHistory(days: Int, cacheDirectory: String?, limits: GitHistoryLimits) {
    precondition(days >= 0, "history days must not be negative")
    state.withLock { $0.history = History(days: days, cacheDirectory: cacheDirectory, limits: limits) }
  }

  /// The commit a blob served from history came from (the newest commit of the window that
  /// held it), as 40 hex digits; nil when this store has not served that blob from history.
  public func historyCommit(for id: ObjectID) -> String? {
    state.withLock { $0.history?.served[id].map(hexBytes) }
  }

  /// How often this store built a history map by walking commits, and loaded one from the
  /// cache folder (for tests and measurements).
  var historyStats: (walks: Int, loads: Int) { state.withLock { ($0.historyWalks, $0.historyLoads) } }

  /// What the last walk of history read: commits, tree entries loaded, rows kept.
  var lastHistoryWalk: GitHistoryWalkStats { state.withLock { $0.lastWalk } }

  /// A blob that is not at the tip, from history: each git blob the map lists for it, newest
  /// first, until one verifies.
  func historyGet(_ id: ObjectID, maxSize: Int) throws -> Data {
    let what = "blob '\(id.hex)'"
    while true {
      let (candidates, fromDisk, days, partial) = try state.withLock { s in
        let map = try historyMap(&s)
        let partial = map.flatMap { $0.searchedInFull(id) ? nil : $0.stoppedAfter }
        return (map?.candidates(id) ?? [], s.history?.fromDisk ?? false, s.history?.days ?? 0, partial)
      }
      if candidates.isEmpty {
        var window = days == 0 ? "in its history" : "in the last \(days) days of its history"
        if let partial {
          window += " (searched in full only back \(partial) commits: its trees hold more entries than a walk reads)"
        }
        throw TsukuError(.notFound, "blob '\(id.hex)' not found in '\(location)', at its tip or \(window)")
      }
      var failure: TsukuError?
      for c in candidates {
        do {
          let data = try state.withLock { s -> Data in
            let oid = gitOID(c.blob)
            let size = try s.repo.size(of: oid)
            if size > maxSize { throw tooLarge(what, size: size, max: maxSize) }
            return try s.repo.blob(oid)
          }
          let good = try verified(data, as: id, maxSize: maxSize)
          state.withLock { $0.history?.served[id] = c.commit }
          return good
        } catch let e as TsukuError {
          let detail = "found in commit '\(hexBytes(c.commit))' of the history"
          failure = failure ?? TsukuError(e.code, e.message, reason: e.reason, details: e.details + [detail])
        }
      }
      // A cached map may be damaged: rebuild it from the commits once before refusing.
      guard fromDisk else { throw failure! }
      state.withLock { s in
        s.history?.map = nil
        s.history?.distrustDisk = true
      }
    }
  }

  /// The history map of the current tip: in memory, else from the cache folder, else built by
  /// walking the window (and then cached). Nil while the branch has no commit.
  func historyMap(_ s: inout State) throws -> GitHistoryMap? {
    guard var h = s.history, let tip = s.tip.commit else { return nil }
    let tipBytes = oidBytes(tip)
    if let m = h.map, m.tip == tipBytes { return m }
    let key = GitHistoryCache.key(repository: repositoryPath, subdirectory: subdirectory, days: h.days)
    if let dir = h.cacheDirectory, !h.distrustDisk,
      let m = GitHistoryCache.load(GitHistoryCache.path(dir, key: key, tip: hex(tip)), tip: tipBytes, days: h.days)
    {
      (h.map, h.fromDisk) = (m, true)
      s.historyLoads += 1
      s.history = h
      return m
    }
    let (m, stats) = try s.repo.historyMap(
      tip: tip, objects: layoutPath("objects/sha256"), days: h.days, limits: h.limits)
    (h.map, h.fromDisk, h.distrustDisk) = (m, false, false)
    s.historyWalks += 1
    s.lastWalk = stats
    if let dir = h.cacheDirectory { GitHistoryCache.save(m, in: dir, key: key, tip: hex(tip)) }
    s.history = h
    return m
  }
}
