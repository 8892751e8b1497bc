import Foundation
import Store

extension Client {
  /// Whether a name the cached index lacks may have been published since: when a source last
  /// confirmed the cached index more than the negative TTL ago (and this command has not asked
  /// the sources yet), one conditional read of `index.json` from the first source, under a
  /// short time limit of its own (`CachePolicy.missCheckTimeout`). An unchanged index only
  /// moves `confirmed_at` forward, so the next miss within the negative TTL costs no request; a
  /// newer one is synced (the normal update path, which uses this read instead of making
  /// another). Returns true when the cache now holds another index. A source that does not
  /// answer leaves the cached answer, with one warning.
  func recheckMissing(_ name: String, _ idx: LoadedIndex) -> Bool {
    guard !refreshTried, !idx.stale, let url = chain.urls.first, let confirmed = idx.confirmedAt,
      now.timeIntervalSince(confirmed) > policy.negativeTTL
    else { return false }
    refreshTried = true
    let meta = home.readCacheMeta()
    let cachedHash = try? cache.index()?.sha256
    let version = (try? trust())?.1.index_version ?? 0
    let etag = Updater.knownETag(meta, url: url, indexVersion: version, cachedHash: cachedHash)
    let read: DocumentRead
    var limit = CachePolicy.missCheckTimeout
    do {
      limit = min(limit, try TransportOptions.apiTimeout())
      let store = try openReader(url, deadline: Deadline(startingAtFirstUse: limit))
      let source = MeteredSource(store: store, backend: TsukuMetrics.backend(of: url), metrics: metrics, now: now)
      read = try source.readDocument(.index, maxSize: Limits.indexFile, ifNoneMatch: etag)
    } catch {
      var why = (error as? TsukuError).map { ([$0.message] + $0.details).joined(separator: "; ") } ?? "\(error)"
      // The limit that ran out is this check's own, not the command's.
      if limit == CachePolicy.missCheckTimeout {
        why = why.replacingOccurrences(of: "the command's time limit", with: "the time limit").replacingOccurrences(
          of: "(TSUKU_API_TIMEOUT)", with: "(the check for a name published since)")
      }
      warn(
        "'\(name)' is not in the cached index (version \(idx.version), confirmed \(Duration.describe(now.timeIntervalSince(confirmed))) ago) and '\(url)' could not be asked for a newer one: \(why)"
      )
      return false
    }
    do {
      let report = try updateRegistry(firstRead: (url, etag, read))
      return report.index_version != idx.version || loaded == nil
    } catch let e as TsukuError {
      warn(
        "'\(name)' is not in the cached index (version \(idx.version)) and the sync of a newer one failed: \(e.message)"
      )
      return false
    } catch {
      return false
    }
  }
}
