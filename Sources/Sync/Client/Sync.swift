import Foundation
import Store

extension Client {
  /// The most pack bytes a dry run holds in memory at once (a real sync streams packs to disk).
  static let fetchBatchBytes = 16 << 20
  /// The same for blobs fetched one by one: they are journaled as a pack built in memory, so a
  /// batch is held twice (at 100K recipes, 16 MB batches took a 1% incremental sync to 95 MB).
  static let singleBatchBytes = 4 << 20

  /// `items` cut into consecutive batches of at most `maxBytes` (a larger item alone).
  static func batches(_ items: [(ObjectID, Int)], maxBytes: Int) -> [[(ObjectID, Int)]] {
    var out = [[(ObjectID, Int)]]()
    var current = [(ObjectID, Int)]()
    var bytes = 0
    for item in items {
      if !current.isEmpty, bytes + item.1 > maxBytes {
        out.append(current)
        (current, bytes) = ([], 0)
      }
      current.append(item)
      bytes += item.1
    }
    if !current.isEmpty { out.append(current) }
    return out
  }

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
  /// the sources as the chain says. Writes the cache (blobs, then index.json) and only then the
  /// trust state, under the home's lock. With `dryRun` nothing is written.
  public func updateRegistry(includeGolden: Bool = true, dryRun: Bool = false) throws -> SyncReport {
    if chain.isEmpty { throw TsukuError(.unavailable, "no sources: --offline or TSUKU_SOURCES=off") }
    return try home.withLock {
      trusted = nil  // another process may have moved trust on while this one waited
      defer { trusted = nil }
      let (root, state) = try trust()
      return try runner.first("no source could be synced") { url in
        do {
          return try sync(from: url, root: root, state: state, includeGolden: includeGolden, dryRun: dryRun)
        } catch let e as TsukuError {
          if e.code == .integrity {
            audit.record(AuditEvent("verify_failure", time: now, source: url, detail: e.message))
            metrics.verificationFailed(backend: TsukuMetrics.backend(of: url), e)
          }
          throw e
        }
      }
    }
  }

  private func sync(
    from url: String, root: TrustedRoot, state before: TrustState, includeGolden: Bool, dryRun: Bool
  ) throws -> SyncReport {
    let src = try source(url)
    // A conditional read: when index.json is what this source served last time, the sync is
    // one request (a 304 over HTTP) and only confirms the cache.
    let meta = home.readCacheMeta()
    let cachedHash = (try? home.cache.readDocument(.index, maxSize: Limits.indexFile))?.map { SHA256.hash($0).hex }
    let known = meta.flatMap {
      $0.source == url && $0.index_version == before.index_version && $0.index_sha256 != nil
        && $0.index_sha256 == cachedHash ? $0.etag : nil
    }
    let bytes: Data
    var etag: String?
    switch try src.readDocument(.index, maxSize: Limits.indexFile, ifNoneMatch: known) {
    case .absent: throw TsukuError(.notFound, "'\(url)' has no index.json")
    case .found(let d, let tag): (bytes, etag) = (d, tag)
    case .notModified:
      if !dryRun, var m = meta {
        m.confirmed_at = Timestamp.format(now)
        try home.writeCacheMeta(m)
      }
      return SyncReport(
        source: url, previous_version: before.index_version, index_version: before.index_version,
        recipes: meta?.recipes ?? 0, golden: meta?.golden ?? 0, fetched_blobs: 0, fetched_bytes: 0, fetched_objects: 0,
        up_to_date: true,
        added: [], changed: [], removed: [])
    }
    let hint = try IndexFile.parse(bytes, what: "index.json from '\(url)'").root_version
    let (newRoot, _) = try root.walk(
      to: hint, fetch: { try src.readDocument(.root($0), maxSize: Limits.root) }, source: url)
    var state = before
    if newRoot.version > root.version {
      // Fast-forward recovery: when a rotation replaced a role's keys, versions signed by the
      // old keys (perhaps leaked, perhaps inflated) no longer bind the client.
      for role in [Role.index, .revocation] where newRoot.payload.roles[role.rawValue] != root.payload.roles[role.rawValue] {
        if role == .index { (state.index_version, state.index_payload_sha256) = (0, nil) }
        else { (state.revocation_version, state.revocation_payload_sha256) = (0, nil) }
      }
    }
    let verified = try IndexVerifier.verify(bytes, root: newRoot, state: state, now: now, source: url)
    let cache = home.cache
    let commit = src.revision

    // Memory stays bounded whatever the registry's size: packs and fetched blobs go to disk a
    // batch at a time, shards are read one at a time, and only the names that changed are kept.
    var objects = [Data]()
    var objectBytes = 0
    var fetchedBytes = 0
    var fetchedBlobs = 0
    // What was fetched as objects: single blobs and whole packs.
    var fetchedObjects = 0
    var newPackFiles = [String]()
    // Dry runs keep what packs hold in memory instead of writing it.
    var dryPacked = [ObjectID: Data]()
    func obtain(_ ref: BlobRef) throws -> Data {
      if let d = dryPacked[ref.sha256], d.count <= ref.size { return d }
      if let d = try? cache.get(ref.sha256, maxSize: ref.size) { return d }
      let d = try src.get(ref.sha256, maxSize: ref.size)
      objects.append(d)
      objectBytes += d.count
      fetchedBytes += d.count
      fetchedBlobs += 1
      fetchedObjects += 1
      if objectBytes >= Client.singleBatchBytes, !dryRun {
        newPackFiles += try cache.addPacks([Pack.build(objects)])
        (objects, objectBytes) = ([], 0)
      }
      return d
    }
    let tree = try IndexTree.parse(obtain(verified.index.tree), what: "index tree from '\(url)'")
    // A cold (or nearly cold) cache takes the packs whole: a handful of requests instead of
    // one per blob. A warm one fetches only what changed. Which it is, the shards say, not the
    // subtrees: a subtree changes with any of its 256 shards, so after a 1% bump nearly every
    // subtree is new while nearly every shard is cached. A cache without an index takes the
    // packs without reading the subtrees first.
    var listed: [IndexTree.Shard]?
    var cold = cachedHash == nil
    if !cold, tree.packs?.isEmpty == false {
      let all = try tree.allShards(fetch: { r, _ in try obtain(r) })
      let missing = try all.filter { !(try cache.contains($0.sha256)) }.count
      cold = missing * 2 >= all.count
      listed = all
    }
    if let packs = tree.packs, !packs.isEmpty, cold {
      if dryRun {
        for batch in Client.batches(packs.map { ($0.sha256, $0.size) }, maxBytes: Client.fetchBatchBytes) {
          for (id, data) in try src.getMany(batch) {
            fetchedBytes += data.count
            fetchedObjects += 1
            let pack = try Pack(data, what: "pack '\(id.hex.prefix(16))' from '\(url)'")
            if let bad = pack.corruptEntries().first {
              throw TsukuError(.integrity, "pack '\(id.hex.prefix(16))' from '\(url)' holds a corrupt blob '\(bad.hex)'")
            }
            fetchedBlobs += pack.entries.count
            for e in pack.entries { dryPacked[e.id] = try pack.blob(e) }
          }
        }
      } else {
        // Written once, each pack into its place in one merged pack as it arrives (several at
        // once, nothing held in memory), checked while the others download, fsynced once;
        // merged, so that the lookups below search one table, not one per pack.
        let parts = packs.map { PackAssembly.Part(id: $0.sha256, size: $0.size, count: $0.count) }
        let assembly = try cache.assembly(of: parts) { "pack '\($0.id.hex.prefix(16))' from '\(url)'" }
        defer { assembly.abandon() }
        let arrived = try src.fetch(into: parts.indices.map { (parts[$0].id, parts[$0].size, assembly.sink($0)) })
        for (p, got) in zip(parts, arrived) where got {
          fetchedBytes += p.size
          fetchedObjects += 1
          fetchedBlobs += p.count
        }
        if let merged = try cache.commit(assembly, arrived: arrived).path { newPackFiles.append(merged) }
      }
    }
    let shards = try listed ?? tree.allShards(fetch: { r, _ in try obtain(r) })
    var revoked = [ObjectID: String]()
    if let r = verified.revocation {
      let list = try RevocationList.parse(obtain(r.list), what: "revocation list from '\(url)'")
      for h in list.hashes { revoked[h.sha256] = h.reason }
    }
    // The cached index's shards, by hash: a shard whose bytes did not change holds no change.
    let old = cachedShards()
    var names = [ObjectID: String]()
    var wanted = [BlobRef]()
    var seen = Set<ObjectID>()
    var recipes = 0
    var golden = 0
    var changedEntries = [String: EntrySummary]()
    for s in shards {
      let shard = try IndexShard.parse(obtain(BlobRef(sha256: s.sha256, size: s.size)), what: "index shard '\(s.prefix)' from '\(url)'")
      let unchanged = old.hashes.contains(s.sha256)
      for e in shard.entries {
        recipes += 1
        golden += e.golden.count
        if !unchanged { changedEntries[e.name] = EntrySummary(e) }
        var refs = [(e.recipe, e.name)]
        if includeGolden { refs += e.golden.map { (BlobRef(sha256: $0.sha256, size: $0.size), "\(e.name) \($0.version) \($0.platform)") } }
        for (r, label) in refs {
          if revoked[r.sha256] != nil {
            names[r.sha256] = label
            continue
          }
          // Packs first: after a cold sync nearly everything is in them, and a set of every
          // blob's id would cost more memory than the packs' own tables.
          guard dryPacked[r.sha256] == nil, !(try cache.contains(r.sha256)), seen.insert(r.sha256).inserted else { continue }
          wanted.append(r)
          names[r.sha256] = label
        }
      }
    }
    // What came one by one is kept as packs (a journal): one file and one fsync per batch,
    // not one per blob, and never more than a batch in memory.
    for batch in Client.batches(wanted.map { ($0.sha256, $0.size) }, maxBytes: Client.singleBatchBytes) {
      let got = try src.getMany(batch)
      var list = [Data]()
      for (id, _) in batch {
        guard let d = got[id] else {
          throw TsukuError(.notFound, "'\(url)' lacks blob '\(id.hex)' that its index names")
        }
        fetchedBytes += d.count
        fetchedBlobs += 1
        fetchedObjects += 1
        list.append(d)
      }
      if !dryRun, list.count > 1 {
        newPackFiles += try cache.addPacks([Pack.build(list)])
      } else if !dryRun {
        objects += list
      }
    }
    let diff = changes(from: old, to: changedEntries, shardHashes: Set(shards.map(\.sha256)))
    let report = SyncReport(
      source: url, previous_version: before.index_version, index_version: verified.index.version, recipes: recipes,
      golden: golden, fetched_blobs: fetchedBlobs, fetched_bytes: fetchedBytes, fetched_objects: fetchedObjects,
      up_to_date: before.index_version == verified.index.version && fetchedBlobs == 0, added: diff.0, changed: diff.1,
      removed: diff.2)
    if dryRun { return report }

    // Packs are kept whole, those of this sync merged into one file on disk; then a revoked
    // blob is purged from the cache (loose or packed), and the user is told which recipe it
    // was and why.
    if objects.count > 1 {
      newPackFiles += try cache.addPacks([Pack.build(objects)])
      objects = []
    }
    try cache.mergePacks(newPackFiles)
    try cache.consolidatePacks(keeping: 8)
    for (id, reason) in revoked.sorted(by: { $0.key < $1.key }) where try cache.contains(id) {
      try cache.remove([id])
      warn("'\(names[id] ?? id.hex)' (sha256 \(id.hex.prefix(16))) is revoked: \(reason); removed it from the cache")
      audit.record(AuditEvent("revoked", time: now, name: names[id], sha256: id, source: url, detail: reason))
    }
    try cache.apply(StoreChange(objects: objects, documents: [(.index, bytes)], message: "sync"))
    CrashPoint.step("cache written, trust not yet")
    try home.saveTrust(root: newRoot, state: verified.advancing(state))
    try home.writeCacheMeta(
      .init(
        synced_at: Timestamp.format(now), confirmed_at: Timestamp.format(now), source: url,
        index_version: verified.index.version, etag: etag, recipes: report.recipes, golden: report.golden,
        index_sha256: SHA256.hash(bytes).hex))
    for id in wanted.map(\.sha256) {
      audit.record(
        AuditEvent("fetch", time: now, name: names[id], sha256: id, source: url, indexVersion: verified.index.version, sourceCommit: commit))
    }
    if newRoot.version != root.version {
      audit.record(AuditEvent("trust_change", time: now, source: url, detail: "root version \(root.version) -> \(newRoot.version)"))
    }
    if let r = verified.revocation, r.version != before.revocation_version {
      audit.record(
        AuditEvent("trust_change", time: now, source: url, detail: "revocation list version \(before.revocation_version) -> \(r.version)"))
    }
    loaded = nil
    enforceSizeLimit()
    cache.sweepTemporaries()
    return report
  }

  /// The cached index's shards: their hashes, and a reader of the entries of those not in a
  /// given set.
  struct CachedShards {
    var hashes = Set<ObjectID>()
    var refs = [IndexTree.Shard]()
    var read: (IndexTree.Shard) -> [IndexEntry]? = { _ in nil }
  }

  func cachedShards() -> CachedShards {
    let cache = home.cache
    guard let bytes = try? cache.readDocument(.index, maxSize: Limits.indexFile),
      let f = try? IndexFile.parse(bytes, what: "cache"), let raw = f.index.payloadBytes,
      let p = try? IndexPayload.parse(raw, what: "cache"),
      let tree = try? IndexTree.parse(try cache.get(p.tree.sha256, maxSize: p.tree.size), what: "cache"),
      let shards = try? tree.allShards(fetch: { r, _ in try cache.get(r.sha256, maxSize: r.size) })
    else { return CachedShards() }
    return CachedShards(
      hashes: Set(shards.map(\.sha256)), refs: shards,
      read: { s in (try? IndexShard.parse(try cache.get(s.sha256, maxSize: s.size), what: "cache"))?.entries })
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
  func changes(from old: CachedShards, to new: [String: EntrySummary], shardHashes: Set<ObjectID>) -> ([String], [String], [String]) {
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
