import Foundation
import Store

/// The local cache under `$TSUKU_HOME/cache`: its store (loose blobs and packs), its access
/// log, and the cached `index.json`, read and parsed once per command (a sync replaces it).
/// What it hands out of the cached index is unverified: it serves decisions (refresh or not,
/// cold or warm, what to keep, what changed) that a verified read confirms or that are safe
/// either way. Trust is decided by `TrustedMetadata`, never here.
final class LocalCache: @unchecked Sendable {
  /// The cached `index.json` and its sections parsed without verification (nil when they do
  /// not parse), each worked out once, when first asked for.
  final class CachedIndex {
    let bytes: Data
    init(_ bytes: Data) { self.bytes = bytes }

    private(set) lazy var file: IndexFile? = try? IndexFile.parse(bytes, what: "cache")
    private(set) lazy var payload: IndexPayload? = file?.index.payloadBytes.flatMap {
      try? IndexPayload.parse($0, what: "cache")
    }
    /// The hash `meta.json` remembers, to tell whether a source's index is this one.
    private(set) lazy var sha256: String = SHA256.hash(bytes).hex
  }

  let home: Home
  let store: DirectoryStore
  let access: AccessLog
  private var cached: Result<CachedIndex?, any Error>?

  init(home: Home, access: AccessLog) {
    self.home = home
    store = home.cache
    self.access = access
  }

  var path: String { home.cacheDir }

  // MARK: the cached index

  /// The cached index, read once (nil when there is none). A cached `index.json` that is not
  /// a regular file (a FIFO put there) counts as none: the next sync renames a new one over it.
  func index() throws -> CachedIndex? {
    if cached == nil {
      cached = Result {
        do {
          return try store.readDocument(.index, maxSize: Limits.indexFile).map(CachedIndex.init)
        } catch let e as TsukuError where e.reason == .notRegularFile {
          return nil
        }
      }
    }
    return try cached!.get()
  }

  /// Forgets the index and the pack tables read so far: once the home's lock is held, another
  /// process may have synced in the meantime.
  func reread() {
    cached = nil
    store.rereadPacks()
  }

  /// The index a sync has just written.
  func replaced(by bytes: Data) { cached = .success(CachedIndex(bytes)) }

  /// The walk over the cached index's tree, reading from the cache alone; nil when there is
  /// no cached index or its tree is not cached.
  func walk() -> IndexWalk? {
    guard let c = try? index(), let p = c.payload,
      let tree = try? IndexTree.parse(try store.get(p.tree.sha256, maxSize: p.tree.size), what: "cache")
    else { return nil }
    return IndexWalk(tree, names: .all("cache"), read: { [store] r, _ in try store.get(r.sha256, maxSize: r.size) })
  }

  /// The cached index's shards: their hashes, and a reader of their entries.
  struct Shards {
    var hashes = Set<ObjectID>()
    var refs = [IndexTree.Shard]()
    var read: (IndexTree.Shard) -> [IndexEntry]? = { _ in nil }
  }

  func shards() -> Shards {
    guard let walk = walk(), let shards = try? walk.shards() else { return Shards() }
    return Shards(hashes: Set(shards.map(\.sha256)), refs: shards, read: { try? walk.entries(of: $0) })
  }

  // MARK: eviction

  /// Blobs that are never evicted: the current index's tree, subtrees, shards and revocation
  /// list, and every blob of the critical set.
  func pinnedBlobs() -> Set<ObjectID> {
    var pinned = Set<ObjectID>()
    guard let c = try? index(), let p = c.payload else { return pinned }
    pinned.insert(p.tree.sha256)
    if let r = c.file?.revocation?.payloadBytes.flatMap({ try? RevocationPayload.parse($0, what: "cache") }) {
      pinned.insert(r.list.sha256)
    }
    guard let walk = walk() else { return pinned }
    for s in walk.tree.subtreeRefs { pinned.insert(s.sha256) }
    let shards = (try? walk.shards()) ?? []
    for s in shards {
      pinned.insert(s.sha256)
      for e in (try? walk.entries(of: s)) ?? [] where e.category == .critical {
        pinned.insert(e.recipe.sha256)
        for g in e.golden { pinned.insert(g.sha256) }
      }
    }
    return pinned
  }

  /// Evicts least recently used blobs when the cache is over `limit` (down to 90% of it), and
  /// warns from 80% full.
  func enforceSizeLimit(_ limit: Int, warn: (String) -> Void) {
    // Well under the limit by the bytes on disk (an upper bound): nothing to list. Listing
    // every packed blob costs 48 bytes each, 16 MB at 100K recipes.
    if store.diskBytes() * 5 <= limit * 4 {
      access.compact()
      return
    }
    let sizes = store.sizes()
    var total = sizes.reduce(0) { $0 + $1.1 }
    if total > limit {
      let pinned = pinnedBlobs()
      let last = access.times().last
      let candidates = sizes.filter { !pinned.contains($0.0) }.sorted { (last[$0.0] ?? $0.2) < (last[$1.0] ?? $1.2) }
      var victims = [ObjectID]()
      for (id, size, _) in candidates where total > limit * 9 / 10 {
        victims.append(id)
        total -= size
      }
      // One removal for all of them: packs are rewritten once, not once per blob.
      try? store.remove(victims)
      warn(
        "cache over its \(ByteSize.describe(limit)) limit: evicted \(victims.count) least recently used blobs (critical set and index kept)"
      )
    }
    if total * 5 > limit * 4 {
      warn(
        "cache is \(total * 100 / max(limit, 1))% full (\(ByteSize.describe(total)) of \(ByteSize.describe(limit))); raise TSUKU_RECIPE_CACHE_SIZE_LIMIT or run 'tsuku cache cleanup'"
      )
    }
    access.compact()
  }

  /// What `tsuku cache info` shows.
  func info(limit: Int) -> CacheInfo {
    let sizes = store.sizes()
    let total = sizes.reduce(0) { $0 + $1.1 }
    let (last, hits, misses) = access.times()
    let oldest = sizes.map { last[$0.0] ?? $0.2 }.min()
    let meta = home.readCacheMeta()
    return CacheInfo(
      path: path, entries: sizes.count, bytes: total, limit: limit,
      percent_full: total * 100 / max(limit, 1), pinned: pinnedBlobs().count,
      oldest_access: oldest.map { Timestamp.format(Date(timeIntervalSince1970: Double($0))) }, hits: hits,
      misses: misses,
      hit_ratio: hits + misses == 0 ? nil : Double(hits) / Double(hits + misses), index_version: meta?.index_version,
      confirmed_at: meta?.confirmed_at ?? meta?.synced_at)
  }

  /// Removes unpinned blobs not read since `cutoff` (seconds since 1970); returns what was (or
  /// would be) removed.
  func cleanup(before cutoff: Int, dryRun: Bool) throws -> [(ObjectID, Int)] {
    let pinned = pinnedBlobs()
    let last = access.times().last
    let old = store.sizes().filter { !pinned.contains($0.0) && (last[$0.0] ?? $0.2) < cutoff }.map { ($0.0, $0.1) }
    if !dryRun { try store.remove(old.map(\.0)) }
    store.sweepTemporaries()
    return old
  }
}
