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
    let commit = (src.store as? GitStore)?.commitID

    var objects = [Data]()
    var fetchedBytes = 0
    func obtain(_ ref: BlobRef) throws -> Data {
      if let d = try? cache.get(ref.sha256, maxSize: ref.size) { return d }
      let d = try src.get(ref.sha256, maxSize: ref.size)
      objects.append(d)
      fetchedBytes += d.count
      return d
    }
    let tree = try IndexTree.parse(obtain(verified.index.tree), what: "index tree from '\(url)'")
    // A cold (or nearly cold) cache takes the packs whole: a handful of requests instead of
    // one per blob. A warm one fetches only what changed.
    var packed = [ObjectID: Data]()
    var packFiles = [Data]()
    let missingShards = try tree.shards.filter { !(try cache.contains($0.sha256)) }.count
    if let packs = tree.packs, !packs.isEmpty, missingShards * 2 >= tree.shards.count {
      let got = try src.getMany(packs.map { ($0.sha256, $0.size) })
      for ref in packs {
        guard let data = got[ref.sha256] else { continue }
        fetchedBytes += data.count
        let pack = try Pack(data, what: "pack '\(ref.sha256.hex.prefix(16))' from '\(url)'")
        for e in pack.entries { packed[e.id] = try pack.blob(e) }
        // Kept whole in the cache: one file instead of one per blob.
        packFiles.append(data)
      }
    }
    func obtainPacked(_ ref: BlobRef) throws -> Data {
      if let d = packed[ref.sha256], d.count <= ref.size { return d }
      return try obtain(ref)
    }
    var entries = [IndexEntry]()
    var entriesByShard = [ObjectID: [IndexEntry]]()
    for s in tree.shards {
      let shard = try IndexShard.parse(obtainPacked(BlobRef(sha256: s.sha256, size: s.size)), what: "index shard '\(s.prefix)' from '\(url)'")
      entries += shard.entries
      entriesByShard[s.sha256] = shard.entries
    }
    var revoked = [ObjectID: String]()
    if let r = verified.revocation {
      let list = try RevocationList.parse(obtainPacked(r.list), what: "revocation list from '\(url)'")
      for h in list.hashes { revoked[h.sha256] = h.reason }
    }
    var names = [ObjectID: String]()
    for e in entries {
      names[e.recipe.sha256] = e.name
      for g in e.golden { names[g.sha256] = "\(e.name) \(g.version) \(g.platform)" }
    }
    var wanted = [BlobRef]()
    var seen = Set<ObjectID>()
    for e in entries {
      var refs = [e.recipe]
      if includeGolden { refs += e.golden.map { BlobRef(sha256: $0.sha256, size: $0.size) } }
      for r in refs where revoked[r.sha256] == nil && seen.insert(r.sha256).inserted {
        if packed[r.sha256] == nil, !(try cache.contains(r.sha256)) { wanted.append(r) }
      }
    }
    var got = [ObjectID: Data]()
    for (id, d) in try src.getMany(wanted.map { ($0.sha256, $0.size) }) {
      got[id] = d
      fetchedBytes += d.count
    }
    for r in wanted {
      guard let d = got[r.sha256] else {
        throw TsukuError(.notFound, "'\(url)' lacks blob '\(r.sha256.hex)' that its index names")
      }
      objects.append(d)
    }
    // Only shards whose bytes changed can hold a change: the others are not read again.
    let cached = cachedEntries(skipping: Set(entriesByShard.keys))
    let diff = changes(
      from: cached.entries, to: entriesByShard.filter { !cached.shards.contains($0.key) }.values.flatMap { $0 })
    let report = SyncReport(
      source: url, previous_version: before.index_version, index_version: verified.index.version, recipes: entries.count,
      golden: entries.reduce(0) { $0 + $1.golden.count }, fetched_blobs: objects.count + packed.count, fetched_bytes: fetchedBytes,
      fetched_objects: objects.count + packFiles.count,
      up_to_date: before.index_version == verified.index.version && objects.isEmpty && packFiles.isEmpty, added: diff.0, changed: diff.1,
      removed: diff.2)
    if dryRun { return report }

    // Packs are kept whole; then a revoked blob is purged from the cache (loose or packed),
    // and the user is told which recipe it was and why.
    // What came one by one is kept as one more pack (a journal): one file and one fsync for
    // the batch, not one per blob.
    if objects.count > 1 {
      packFiles.append(Pack.build(objects))
      objects = []
    }
    try cache.addPacks(packFiles)
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

  /// The entries of the cached index, but for the shards in `skipping`, and the hashes of all
  /// its shards; nothing when it cannot be read.
  func cachedEntries(skipping: Set<ObjectID> = []) -> (entries: [IndexEntry], shards: Set<ObjectID>) {
    let cache = home.cache
    guard let bytes = try? cache.readDocument(.index, maxSize: Limits.indexFile),
      let f = try? IndexFile.parse(bytes, what: "cache"), let raw = f.index.payloadBytes,
      let p = try? IndexPayload.parse(raw, what: "cache"),
      let tree = try? IndexTree.parse(try cache.get(p.tree.sha256, maxSize: p.tree.size), what: "cache")
    else { return ([], []) }
    var out = [IndexEntry]()
    for s in tree.shards where !skipping.contains(s.sha256) {
      guard let shard = try? IndexShard.parse(try cache.get(s.sha256, maxSize: s.size), what: "cache") else { return ([], []) }
      out += shard.entries
    }
    return (out, Set(tree.shards.map(\.sha256)))
  }

  private func changes(from old: [IndexEntry], to new: [IndexEntry]) -> ([String], [String], [String]) {
    let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let after = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let added = after.keys.filter { before[$0] == nil }.sorted()
    let removed = before.keys.filter { after[$0] == nil }.sorted()
    let changed = after.keys.filter { k in before[k].map { $0.recipe != after[k]!.recipe || $0.golden != after[k]!.golden } ?? false }.sorted()
    return (added, changed, removed)
  }
}
