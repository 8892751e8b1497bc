import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

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
/// command, not one write per read.
extension Client {
  var accessLogPath: String { home.cacheDir + "/access.log" }

  /// Appends the reads of this command to the access log (one write).
  func flushAccess() {
    guard !accessed.isEmpty, FileManager.default.fileExists(atPath: home.cacheDir) else { return }
    let t = Int(now.timeIntervalSince1970)
    var text = ""
    for (id, hit) in accessed { text += "\(hit ? "h" : "m") \(id.hex) \(t)\n" }
    accessed.removeAll()
    let fd = open(accessLogPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    defer { close(fd) }
    _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
  }

  /// Last access time per blob, and hit/miss counts, from the access log.
  func accessTimes() -> (last: [ObjectID: Int], hits: Int, misses: Int) {
    var last = [ObjectID: Int]()
    var hits = 0
    var misses = 0
    guard let data = FileManager.default.contents(atPath: accessLogPath) else { return ([:], 0, 0) }
    for line in data.split(separator: UInt8(ascii: "\n")) {
      let parts = line.split(separator: UInt8(ascii: " "))
      guard parts.count == 3, let id = ObjectID(hex: String(decoding: parts[1], as: UTF8.self)),
        let t = Int(String(decoding: parts[2], as: UTF8.self))
      else { continue }
      if parts[0].first == UInt8(ascii: "h") { hits += 1 } else { misses += 1 }
      last[id] = max(last[id] ?? 0, t)
    }
    return (last, hits, misses)
  }

  /// Blobs that are never evicted: the current index's tree, shards and revocation list, and
  /// every blob of the critical set.
  func pinnedBlobs() -> Set<ObjectID> {
    let cache = home.cache
    var pinned = Set<ObjectID>()
    guard let bytes = try? cache.readDocument(.index, maxSize: Limits.indexFile),
      let f = try? IndexFile.parse(bytes, what: "cache"), let raw = f.index.payloadBytes,
      let p = try? IndexPayload.parse(raw, what: "cache")
    else { return pinned }
    pinned.insert(p.tree.sha256)
    if let r = f.revocation?.payloadBytes.flatMap({ try? RevocationPayload.parse($0, what: "cache") }) {
      pinned.insert(r.list.sha256)
    }
    if let tree = try? IndexTree.parse(try cache.get(p.tree.sha256, maxSize: p.tree.size), what: "cache") {
      for s in tree.subtreeRefs { pinned.insert(s.sha256) }
      for s in (try? tree.allShards(fetch: { r, _ in try cache.get(r.sha256, maxSize: r.size) })) ?? [] { pinned.insert(s.sha256) }
    }
    let cached = cachedShards()
    for s in cached.refs {
      for e in cached.read(s) ?? [] where e.category == .critical {
        pinned.insert(e.recipe.sha256)
        for g in e.golden { pinned.insert(g.sha256) }
      }
    }
    return pinned
  }

  private func blobSizes() -> [(ObjectID, Int, Int)] { home.cache.sizes() }

  /// Evicts least recently used blobs when the cache is over its limit (down to 90% of it),
  /// and warns from 80% full.
  func enforceSizeLimit() {
    let limit = policy.sizeLimit
    // Well under the limit by the bytes on disk (an upper bound): nothing to list. Listing
    // every packed blob costs 48 bytes each, 16 MB at 100K recipes.
    if home.cache.diskBytes() * 5 <= limit * 4 {
      compactAccessLog()
      return
    }
    let sizes = blobSizes()
    var total = sizes.reduce(0) { $0 + $1.1 }
    if total > limit {
      let pinned = pinnedBlobs()
      let last = accessTimes().last
      let candidates = sizes.filter { !pinned.contains($0.0) }.sorted { (last[$0.0] ?? $0.2) < (last[$1.0] ?? $1.2) }
      var victims = [ObjectID]()
      for (id, size, _) in candidates where total > limit * 9 / 10 {
        victims.append(id)
        total -= size
      }
      // One removal for all of them: packs are rewritten once, not once per blob.
      try? home.cache.remove(victims)
      let evicted = victims.count
      warn("cache over its \(ByteSize.describe(limit)) limit: evicted \(evicted) least recently used blobs (critical set and index kept)")
    }
    if total * 5 > limit * 4 {
      warn("cache is \(total * 100 / max(limit, 1))% full (\(ByteSize.describe(total)) of \(ByteSize.describe(limit))); raise TSUKU_RECIPE_CACHE_SIZE_LIMIT or run 'tsuku cache cleanup'")
    }
    compactAccessLog()
  }

  private func compactAccessLog() {
    var st = stat()
    guard stat(accessLogPath, &st) == 0, st.st_size > 4 << 20 else { return }
    let (last, _, _) = accessTimes()
    let text = last.map { "h \($0.key.hex) \($0.value)\n" }.joined()
    try? writeFileAtomically(Data(text.utf8), to: accessLogPath)
  }

  public func cacheInfo() -> CacheInfo {
    let sizes = blobSizes()
    let total = sizes.reduce(0) { $0 + $1.1 }
    let (last, hits, misses) = accessTimes()
    let oldest = sizes.map { last[$0.0] ?? $0.2 }.min()
    let meta = home.readCacheMeta()
    return CacheInfo(
      path: home.cacheDir, entries: sizes.count, bytes: total, limit: policy.sizeLimit,
      percent_full: total * 100 / max(policy.sizeLimit, 1), pinned: pinnedBlobs().count,
      oldest_access: oldest.map { Timestamp.format(Date(timeIntervalSince1970: Double($0))) }, hits: hits, misses: misses,
      hit_ratio: hits + misses == 0 ? nil : Double(hits) / Double(hits + misses), index_version: meta?.index_version,
      confirmed_at: meta?.confirmed_at ?? meta?.synced_at)
  }

  /// Removes unpinned blobs not read for `maxAge`; returns what was (or would be) removed.
  public func cleanup(maxAge: TimeInterval, dryRun: Bool) throws -> [(ObjectID, Int)] {
    try home.withLock {
      let pinned = pinnedBlobs()
      let last = accessTimes().last
      let cutoff = Int(now.timeIntervalSince1970 - maxAge)
      let old = blobSizes().filter { !pinned.contains($0.0) && (last[$0.0] ?? $0.2) < cutoff }.map { ($0.0, $0.1) }
      if !dryRun { try home.cache.remove(old.map(\.0)) }
      home.cache.sweepTemporaries()
      return old
    }
  }

  /// Removes the whole registry cache; the trust state stays unless `trust` is set.
  public func clear(trust: Bool) throws {
    try home.withLock {
      for p in [home.cacheDir] + (trust ? [home.trustDir] : []) where FileManager.default.fileExists(atPath: p) {
        do { try FileManager.default.removeItem(atPath: p) } catch {
          throw TsukuError(.other, "cannot remove '\(p)': \(error.localizedDescription)")
        }
      }
    }
  }
}
