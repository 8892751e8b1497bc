import Foundation
import Store

/// What `tsuku cache info` shows.
public struct CacheInfo: Codable, Sendable {
  public var path: String
  public var entries: Int
  public var bytes: Int
  public var limit: Int
  public var percent_full: Int
  public var pinned: Int
  public var oldest_access: String?
  public var hits: Int
  public var misses: Int
  public var hit_ratio: Double?
  public var index_version: Int?
  public var confirmed_at: String?
}

/// The bounded cache: least recently used blobs are evicted beyond the size limit, never the
/// critical set, the current index (tree, shards, revocation list) or the trust state (which is
/// not in the cache at all). Reads are recorded in `cache/access.log` with one append per
/// command, not one write per read (see `LocalCache`, `AccessLog`).
extension Client {
  public func cacheInfo() -> CacheInfo { cache.info(limit: policy.sizeLimit) }

  /// Removes unpinned blobs not read for `maxAge`; returns what was (or would be) removed.
  public func cleanup(maxAge: TimeInterval, dryRun: Bool) throws -> [(ObjectID, Int)] {
    try home.withLock {
      cache.reread()
      return try cache.cleanup(before: Int(now.timeIntervalSince1970 - maxAge), dryRun: dryRun)
    }
  }

  /// Removes this program's registry cache; the Go client's files in `cache/` (downloads,
  /// versions, ...) stay, and so does the trust state unless `trust` is set.
  /// Returns the names removed from `cache/` and the names kept there (the Go client's).
  @discardableResult
  public func clear(trust: Bool) throws -> (removed: [String], kept: [String]) {
    try home.withLock {
      // Links are removed, never followed; a failure names the entry and the system's reason
      // (`cannot remove '…': Read-only file system`).
      let r = try home.removeOwnCache()
      if trust { try FileIO.removeTree(home.trustDir) }
      cache.reread()
      return r
    }
  }
}
