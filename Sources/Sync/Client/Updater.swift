import Foundation
import Store

/// One sync from one source, as short named steps: read `index.json` (conditionally), walk
/// the root, verify, fetch the tree, judge the cache cold or warm, take the packs, fetch the
/// changed blobs, write the cache (purging revoked blobs), save trust, record. Trust is
/// decided by `trusted` alone; the cache's packs are `cache` and `journal`'s business; what
/// happened goes to `recorder`. The tree's parts (the tree with the revocation list, the
/// subtrees, the shards the cache lacks) are fetched in parallel batches, so a slow source
/// costs a round trip per batch, not one per blob. Memory stays bounded whatever the
/// registry's size: packs and fetched blobs go to disk a batch at a time, shards are read one
/// at a time, and only the names that changed are kept.
final class Updater {
  /// The most pack bytes a dry run holds in memory at once (a real sync streams packs to disk).
  static let fetchBatchBytes = 16 << 20

  let url: String
  let source: Source
  let cache: LocalCache
  let recorder: Recorder
  let warn: (String) -> Void
  let includeGolden: Bool
  let dryRun: Bool
  private(set) var trusted: TrustedMetadata
  private let journal: CacheJournal
  private var now: Date { trusted.now }

  /// What was received: blobs the index names (each blob of a pack counted), their bytes
  /// (packs whole), and objects (a pack counting as one).
  private var fetchedBlobs = 0
  private var fetchedBytes = 0
  private var fetchedObjects = 0
  /// True once the sync has written the cache and the trust state.
  private(set) var wroteCache = false
  /// The blobs fetched alone that the journal still holds in memory, out of the cache's
  /// reach (it writes them once it has a batch's worth): the same buffers, no copies.
  private var pending = [ObjectID: Data]()
  /// The signed index's revocation list, fetched with the subtrees.
  private var revocationRefs = [BlobRef]()
  private var pendingBytes = 0
  /// What this sync received, for the audit log (nil on a dry run, which records nothing).
  private var receipt: AuditReceipt?
  /// The blobs of the packs this sync took, sorted, and which of them the index names.
  private var packed = (ids: [ObjectID](), named: [Bool]())
  /// The blobs fetched alone so far (the tree, subtrees, shards, the revocation list).
  private var alone = Set<ObjectID>()
  /// `index.json` as already read from this source (conditionally, with `etag`) by the check of
  /// a missing name: used instead of a second request when the cache still has that ETag.
  var firstRead: (etag: String?, read: DocumentRead)?

  init(
    url: String, source: Source, trusted: TrustedMetadata, cache: LocalCache, recorder: Recorder, includeGolden: Bool,
    dryRun: Bool, warn: @escaping (String) -> Void
  ) {
    (self.url, self.source, self.trusted, self.cache, self.recorder) = (url, source, trusted, cache, recorder)
    (self.includeGolden, self.dryRun, self.warn) = (includeGolden, dryRun, warn)
    journal = CacheJournal(store: cache.store, dryRun: dryRun)
  }

  /// What the index names, as one pass over its shards found it.
  struct Plan {
    var wanted = [BlobRef]()
    /// The recipe (and golden file) each wanted or revoked blob belongs to, for messages.
    var names = [ObjectID: String]()
    var recipes = 0
    var golden = 0
    /// The entries of the shards that are not in the cache.
    var changed = [String: Client.EntrySummary]()
  }

  func run() throws -> Client.SyncReport {
    let cachedHash = try? cache.index()?.sha256
    let meta = cache.home.readCacheMeta()
    guard let (bytes, etag) = try readIndex(meta, cachedHash: cachedHash) else { return try confirmUnchanged(meta) }
    // A cached pack whose table does not check out is set aside before anything is judged
    // from the packs: what it held is fetched again, and it blocks neither this sync nor its
    // revocations.
    if !dryRun { cache.store.checkPacks() }
    let verified = try verify(bytes)
    try trusted.acceptLog(
      LogVerifier(url: url, cacheDir: dryRun ? nil : cache.home.path + "/log", read: source.readDocument)
        .verify(
          index: bytes, version: verified.index.version, root: trusted.root.payload, trusted: trusted.state,
          witnesses: try WitnessPolicy.checker(cache.home.readConfig())))
    if !dryRun {
      receipt = AuditReceipt(
        home: cache.home, time: now, source: url, indexVersion: verified.index.version, sourceCommit: source.revision)
    }
    // The revocation list travels with the subtrees, after the packs (which usually hold it):
    // fetched before them it would be a second lone blob, and two lone blobs make a pack of
    // their own that the cold sync then merges with the big one (a copy of every byte).
    revocationRefs = verified.revocation.map { [$0.list] } ?? []
    let tree = try fetching("the index tree") { try fetchTree(verified) }
    let walk = IndexWalk(tree, names: .shard(suffix: " from '\(url)'"), read: { r, _ in try self.obtain(r) })
    let listed = try fetching("the index subtrees") { try judgeWarm(walk, cold: cachedHash == nil) }
    if let packs = walk.tree.packs, !packs.isEmpty, listed.cold { try fetching("the packs") { try takePacks(packs) } }
    let shards = try fetching("the index subtrees") { try listed.shards ?? allShards(walk) }
    if let r = verified.revocation {
      try fetching("the revocation list") {
        try trusted.updateRevocationList(obtain(r.list), what: "revocation list from '\(url)'")
      }
    }
    let old = cache.shards()
    let plan = try fetching("the index shards") {
      try prefetch(shards.map(\.ref))
      return try self.plan(walk, shards, old: old)
    }
    try fetching("\(plan.wanted.count) recipes and golden files") { try fetchChanged(plan.wanted) }
    let diff = Client.changes(from: old, to: plan.changed, shardHashes: Set(shards.map(\.sha256)))
    let before = trusted.startState
    let report = Client.SyncReport(
      source: url, previous_version: before.index_version, index_version: verified.index.version, recipes: plan.recipes,
      golden: plan.golden, fetched_blobs: fetchedBlobs, fetched_bytes: fetchedBytes, fetched_objects: fetchedObjects,
      up_to_date: before.index_version == verified.index.version && fetchedBlobs == 0, added: diff.0, changed: diff.1,
      removed: diff.2)
    if dryRun { return report }
    try writeCache(bytes, plan, version: verified.index.version)
    try saveTrust(bytes, etag: etag, report)
    record(plan, verified)
    wroteCache = true
    return report
  }

  // MARK: the steps

  /// Runs a step that fetches `what`: when the source does not answer (in time, or at all),
  /// the error says what the sync was fetching.
  private func fetching<T>(_ what: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let e as TsukuError where e.code == .unavailable {
      throw TsukuError(e.code, e.message, reason: e.reason, details: e.details + ["while fetching \(what)"])
    }
  }

  /// `index.json` from the source, or nil when it is the one this source served last time: a
  /// conditional read (a 304 over HTTP), so a sync that changes nothing is one request.
  private func readIndex(_ meta: Home.CacheMeta?, cachedHash: String?) throws -> (Data, String?)? {
    let known = Updater.knownETag(meta, url: url, indexVersion: trusted.startState.index_version, cachedHash: cachedHash)
    let read: DocumentRead
    if let f = firstRead, f.etag == known {
      read = f.read
    } else {
      read = try source.readDocument(.index, maxSize: Limits.indexFile, ifNoneMatch: known)
    }
    switch read {
    case .absent: throw TsukuError(.notFound, "'\(url)' has no index.json")
    case .found(let d, let tag): return (d, tag)
    case .notModified: return nil
    }
  }

  /// The ETag of the cached index for a conditional read from `url`: the one `url` gave when
  /// the cache and the trust state still hold that very index, else nil (an unconditional read).
  static func knownETag(_ meta: Home.CacheMeta?, url: String, indexVersion: Int, cachedHash: String?) -> String? {
    meta.flatMap {
      $0.source == url && $0.index_version == indexVersion && $0.index_sha256 != nil && $0.index_sha256 == cachedHash
        ? $0.etag : nil
    }
  }

  /// The source confirmed the cached index: only the time of that confirmation changes.
  private func confirmUnchanged(_ meta: Home.CacheMeta?) throws -> Client.SyncReport {
    if !dryRun, var m = meta {
      m.confirmed_at = Timestamp.format(now)
      try cache.home.writeCacheMeta(m)
    }
    let v = trusted.startState.index_version
    return Client.SyncReport(
      source: url, previous_version: v, index_version: v, recipes: meta?.recipes ?? 0, golden: meta?.golden ?? 0,
      fetched_blobs: 0, fetched_bytes: 0, fetched_objects: 0, up_to_date: true, added: [], changed: [], removed: [])
  }

  /// Walks the root to the version the index names, then verifies the index under it.
  private func verify(_ bytes: Data) throws -> VerifiedIndex {
    let hint = try IndexFile.parse(bytes, what: "index.json from '\(url)'").root_version
    try trusted.updateRoot(to: hint, source: url) { try self.source.readDocument(.root($0), maxSize: Limits.root) }
    return try trusted.updateIndex(bytes, source: url)
  }

  /// A blob the index names: held by this sync, cached, or fetched alone (and journaled).
  private func obtain(_ ref: BlobRef) throws -> Data {
    if let d = journal.held(ref) { return d }
    if let d = pending[ref.sha256], d.count <= ref.size { return d }
    if let d = try? cache.store.get(ref.sha256, maxSize: ref.size) { return d }
    let d = try source.get(ref.sha256, maxSize: ref.size)
    receivedAlone(ref.sha256)
    fetchedBytes += d.count
    fetchedBlobs += 1
    fetchedObjects += 1
    try journalAlone(ref.sha256, d)
    return d
  }

  /// A part of the index fetched alone, for the receipt.
  private func receivedAlone(_ id: ObjectID) {
    if receipt != nil, alone.insert(id).inserted { receipt?.add(id, kind: .index, name: nil) }
  }

  /// Journals a blob fetched alone, and keeps it at hand until the journal writes it.
  private func journalAlone(_ id: ObjectID, _ d: Data) throws {
    try journal.add(d)
    pendingBytes += d.count
    if pendingBytes >= CacheJournal.singleBatchBytes {
      (pending, pendingBytes) = ([:], 0)
    } else {
      pending[id] = d
    }
  }

  /// Fetches the blobs of `refs` that neither this sync nor the cache holds, in parallel
  /// batches, and journals them (on disk, in the cache), so that the reads that follow find
  /// them there. A blob the source lacks is left for that read to report.
  private func prefetch(_ refs: [BlobRef]) throws {
    var seen = Set<ObjectID>()
    let missing = try refs.filter { r in
      guard seen.insert(r.sha256).inserted, journal.held(r) == nil, pending[r.sha256] == nil else { return false }
      return !(try cache.store.contains(r.sha256))
    }
    for batch in missing.batched(maxBytes: CacheJournal.singleBatchBytes, size: \.size) {
      let got = try source.getMany(batch.map { ($0.sha256, $0.size) })
      for r in batch {
        guard let d = got[r.sha256] else { continue }
        receivedAlone(r.sha256)
        fetchedBytes += d.count
        fetchedBlobs += 1
        fetchedObjects += 1
        try journalAlone(r.sha256, d)
      }
    }
  }

  /// Every shard, the subtrees (and the revocation list) fetched together first.
  private func allShards(_ walk: IndexWalk) throws -> [IndexTree.Shard] {
    try prefetch(walk.tree.subtreeRefs + revocationRefs)
    return try walk.shards()
  }

  private func fetchTree(_ verified: VerifiedIndex) throws -> IndexTree {
    try IndexTree.parse(obtain(verified.index.tree), what: "index tree from '\(url)'")
  }

  /// A cold (or nearly cold) cache takes the packs whole: a handful of requests instead of one
  /// per blob. A warm one fetches only what changed. Which it is, the shards say, not the
  /// subtrees: a subtree changes with any of its 256 shards, so after a 1% bump nearly every
  /// subtree is new while nearly every shard is cached. A cache without an index takes the
  /// packs without reading the subtrees first. Returns the shards when it listed them.
  private func judgeWarm(_ walk: IndexWalk, cold: Bool) throws -> (cold: Bool, shards: [IndexTree.Shard]?) {
    guard !cold, walk.tree.packs?.isEmpty == false else { return (cold, nil) }
    let all = try allShards(walk)
    let missing = try all.filter { !(try cache.store.contains($0.sha256)) }.count
    return (missing * 2 >= all.count, all)
  }

  /// Takes the packs whole.
  private func takePacks(_ packs: [IndexTree.PackRef]) throws {
    if dryRun {
      for batch in packs.batched(maxBytes: Updater.fetchBatchBytes, size: \.size) {
        for (id, data) in try source.getMany(batch.map { ($0.sha256, $0.size) }) {
          fetchedBytes += data.count
          fetchedObjects += 1
          let pack = try Pack(data, what: "pack '\(id.hex.prefix(16))' from '\(url)'")
          if let bad = pack.corruptEntries().first {
            throw TsukuError(.integrity, "pack '\(id.hex.prefix(16))' from '\(url)' holds a corrupt blob '\(bad.hex)'")
          }
          fetchedBlobs += pack.entries.count
          try journal.hold(pack)
        }
      }
      return
    }
    // Written once, each pack into its place in one merged pack as it arrives (several at
    // once, nothing held in memory), checked while the others download, fsynced once; merged,
    // so that the lookups below search one table, not one per pack.
    let parts = packs.map { PackAssembly.Part(id: $0.sha256, size: $0.size, count: $0.count) }
    let assembly = try cache.store.assembly(of: parts) { [url] in "pack '\($0.id.hex.prefix(16))' from '\(url)'" }
    defer { assembly.abandon() }
    let arrived = try source.fetch(into: parts.indices.map { (parts[$0].id, parts[$0].size, assembly.sink($0)) })
    for (p, got) in zip(parts, arrived) where got {
      fetchedBytes += p.size
      fetchedObjects += 1
      fetchedBlobs += p.count
    }
    if let merged = try cache.store.commit(assembly, arrived: arrived).path {
      journal.add(packFile: merged)
      if receipt != nil, let table = try? PackFile.table(merged) {
        let ids = table.entries.map(\.id).sorted()
        packed = (ids, [Bool](repeating: false, count: ids.count))
      }
    }
  }

  /// Notes `id` for the receipt when it came in a pack of this sync (a binary search of the
  /// packs' sorted ids: no set of every blob is built).
  private func notePacked(_ id: ObjectID, _ kind: BlobKind, _ name: String) {
    guard receipt != nil, !packed.ids.isEmpty else { return }
    var (lo, hi) = (0, packed.ids.count)
    while lo < hi {
      let mid = (lo + hi) / 2
      if packed.ids[mid] < id { lo = mid + 1 } else { hi = mid }
    }
    // Once per blob, however many entries name it (a golden file shared by two platforms).
    guard lo < packed.ids.count, packed.ids[lo] == id, !packed.named[lo] else { return }
    packed.named[lo] = true
    receipt?.add(id, kind: kind, name: name)
  }

  /// One pass over the shards: counts, the entries of the shards not cached (a shard whose
  /// bytes did not change holds no change), and the blobs to fetch.
  private func plan(_ walk: IndexWalk, _ shards: [IndexTree.Shard], old: LocalCache.Shards) throws -> Plan {
    var plan = Plan()
    var seen = Set<ObjectID>()
    try walk.forEachShard(shards) { s, entries in
      let unchanged = old.hashes.contains(s.sha256)
      for e in entries {
        plan.recipes += 1
        plan.golden += e.golden.count
        if !unchanged { plan.changed[e.name] = Client.EntrySummary(e) }
        var refs = [(e.recipe, e.name, BlobKind.recipe)]
        let golden = e.golden.map {
          (BlobRef(sha256: $0.sha256, size: $0.size), "\(e.name) \($0.version) \($0.platform)", BlobKind.golden)
        }
        if includeGolden { refs += golden } else { for (r, label, kind) in golden { notePacked(r.sha256, kind, label) } }
        for (r, label, kind) in refs {
          notePacked(r.sha256, kind, label)
          if trusted.revoked[r.sha256] != nil {
            plan.names[r.sha256] = label
            continue
          }
          // Packs first: after a cold sync nearly everything is in them, and a set of every
          // blob's id would cost more memory than the packs' own tables.
          guard !journal.holds(r.sha256), !(try cache.store.contains(r.sha256)), seen.insert(r.sha256).inserted else {
            continue
          }
          plan.wanted.append(r)
          plan.names[r.sha256] = label
          receipt?.add(r.sha256, kind: kind, name: label)
        }
      }
    }
    return plan
  }

  /// Fetches the blobs that changed, a batch at a time, journaled as packs.
  private func fetchChanged(_ wanted: [BlobRef]) throws {
    for batch in wanted.batched(maxBytes: CacheJournal.singleBatchBytes, size: \.size) {
      let got = try source.getMany(batch.map { ($0.sha256, $0.size) })
      var list = [Data]()
      for r in batch {
        guard let d = got[r.sha256] else {
          throw TsukuError(.notFound, "'\(url)' lacks blob '\(r.sha256.hex)' that its index names")
        }
        fetchedBytes += d.count
        fetchedBlobs += 1
        fetchedObjects += 1
        list.append(d)
      }
      try journal.add(batch: list)
    }
  }

  /// Packs are kept whole, those of this sync merged into one file on disk; then a revoked
  /// blob is purged from the cache (loose or packed), and the user is told which recipe it was
  /// and why; then `index.json`.
  /// The cached index this sync replaces with another `version` is kept
  /// (`Home.previousIndexPath`, its exact bytes, a few kilobytes) for `tsuku diff`.
  private func writeCache(_ bytes: Data, _ plan: Plan, version: Int) throws {
    let replaced = (try? cache.index()).flatMap { $0.payload?.version == version ? nil : $0.bytes }
    let rest = try journal.commit()
    for (id, reason) in trusted.revoked.sorted(by: { $0.key < $1.key }) where try cache.store.contains(id) {
      try cache.store.remove([id])
      warn(
        "'\(plan.names[id] ?? id.hex)' (sha256 \(id.hex.prefix(16))) is revoked: \(reason); removed it from the cache")
      recorder.record(AuditEvent("revoked", time: now, name: plan.names[id], sha256: id, source: url, detail: reason))
    }
    try cache.store.apply(StoreChange(objects: rest, documents: [(.index, bytes)], message: "sync"))
    cache.replaced(by: bytes)
    // Not fsynced, and not failing the sync: losing it only leaves 'tsuku diff' without its
    // default.
    if let replaced { try? writeFileAtomically(replaced, to: cache.home.previousIndexPath, durable: false) }
    CrashPoint.step("cache written, trust not yet")
  }

  /// Trust moves on only once the cache holds what the new index names.
  private func saveTrust(_ bytes: Data, etag: String?, _ report: Client.SyncReport) throws {
    try cache.home.saveTrust(root: trusted.root, state: trusted.advancedState)
    try cache.home.writeCacheMeta(
      .init(
        synced_at: Timestamp.format(now), confirmed_at: Timestamp.format(now), source: url,
        index_version: report.index_version, etag: etag, recipes: report.recipes, golden: report.golden,
        index_sha256: SHA256.hash(bytes).hex))
  }

  /// The audit trail of the sync: one `receive` line for every blob it received (the pack
  /// blobs no index entry named are parts of the index), and any change of trust.
  private func record(_ plan: Plan, _ verified: VerifiedIndex) {
    if let receipt {
      for (i, id) in packed.ids.enumerated() where !packed.named[i] && !alone.contains(id) {
        receipt.add(id, kind: .index, name: nil)
      }
      recorder.audit.record(receipt)
      self.receipt = nil
    }
    let (root, newRoot, before) = (trusted.startRoot, trusted.root, trusted.startState)
    if newRoot.version != root.version {
      recorder.record(
        AuditEvent("trust_change", time: now, source: url, detail: "root version \(root.version) -> \(newRoot.version)")
      )
    }
    if let r = verified.revocation, r.version != before.revocation_version {
      recorder.record(
        AuditEvent(
          "trust_change", time: now, source: url,
          detail: "revocation list version \(before.revocation_version) -> \(r.version)"))
    }
  }
}
