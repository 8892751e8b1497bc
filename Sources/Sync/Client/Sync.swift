import Foundation
import Store

extension Client {
  /// What a sync did (or, with `dryRun`, would do).
  public struct SyncReport: Sendable, Codable {
    public var source: String
    public var previous_version: Int
    public var index_version: Int
    public var recipes: Int
    public var golden: Int
    /// Blobs the index names that were fetched (each blob of a pack counted).
    public var fetched_blobs: Int
    /// Bytes received for them (packs whole).
    public var fetched_bytes: Int
    /// Objects received from the source: a pack counts as one (what the
    /// `tsuku_fetched_objects_total{what="blob"}` metric counts).
    public var fetched_objects: Int
    public var up_to_date: Bool
    /// Recipes added, changed (recipe or golden files) and removed since the cached index.
    public var added: [String]
    public var changed: [String]
    public var removed: [String]
  }

  /// Fetches the newest verified index and every blob it names that the cache lacks, trying
  /// the sources as the chain says (one `Updater` run per source tried). Writes the cache
  /// (blobs, then index.json) and only then the trust state, under the home's lock. With
  /// `dryRun` nothing is written.
  public func updateRegistry(includeGolden: Bool = true, dryRun: Bool = false) throws -> SyncReport {
    try updateRegistry(includeGolden: includeGolden, dryRun: dryRun, firstRead: nil)
  }

  /// As `updateRegistry()`; `firstRead` is `index.json` as already read from one source.
  func updateRegistry(
    includeGolden: Bool = true, dryRun: Bool = false, firstRead: (url: String, etag: String?, read: DocumentRead)?
  ) throws -> SyncReport {
    refreshTried = true
    if chain.isEmpty { throw TsukuError(.unavailable, chain.emptyReason ?? "no sources: --offline or TSUKU_SOURCES=off") }
    return try home.withLock {
      // Another process may have moved trust and the cache on while this one waited.
      trustMemo = nil
      cache.reread()
      defer { trustMemo = nil }
      let trusted = try trustedMetadata()
      return try runner.first("no source could be synced") { url in
        do {
          let updater = Updater(
            url: url, source: try source(url), trusted: trusted, cache: cache, recorder: recorder,
            includeGolden: includeGolden,
            dryRun: dryRun, warn: warn)
          if let f = firstRead, f.url == url { updater.firstRead = (f.etag, f.read) }
          let report = try updater.run()
          if updater.wroteCache {
            // The loaded index is another one now; the cache may have grown past its limit.
            loaded = nil
            cache.enforceSizeLimit(policy.sizeLimit, warn: warn)
            cache.store.sweepTemporaries()
          }
          return report
        } catch let e as TsukuError {
          if e.code == .integrity {
            recorder.record(AuditEvent("verify_failure", time: now, source: url, detail: e.message))
            metrics.verificationFailed(backend: TsukuMetrics.backend(of: url), e)
          }
          throw e
        }
      }
    }
  }

  /// What decides whether an entry changed: its recipe and golden references, kept as one
  /// hash of them (32 bytes, where the references themselves took about 350: at 100K recipes
  /// a cold sync holds one per recipe).
  struct EntrySummary: Equatable {
    var digest: ObjectID
    init(_ e: IndexEntry) {
      var text = "\(e.recipe.sha256.hex) \(e.recipe.size)"
      for g in e.golden { text += "\n\(g.platform) \(g.version) \(g.sha256.hex) \(g.size)" }
      digest = SHA256.hash(text)
    }
  }

  /// Added, changed and removed names, from the entries of the new shards that are not in the
  /// cache (`new`) and those of the cached shards that are not in the new index.
  static func changes(
    from old: LocalCache.Shards, to new: [String: EntrySummary], shardHashes: Set<ObjectID>
  ) -> ([String], [String], [String]) {
    var before = [String: EntrySummary]()
    for s in old.refs where !shardHashes.contains(s.sha256) {
      // A cached shard that cannot be read: report every new name as added.
      guard let entries = old.read(s) else {
        before = [:]
        break
      }
      for e in entries { before[e.name] = EntrySummary(e) }
    }
    // Sorted in place: after a cold sync of 100K recipes each list copy is megabytes.
    var added = new.keys.filter { before[$0] == nil }
    added.sort()
    var removed = before.keys.filter { new[$0] == nil }
    removed.sort()
    var changed = new.keys.filter { k in before[k].map { $0 != new[k]! } ?? false }
    changed.sort()
    return (added, changed, removed)
  }
}
