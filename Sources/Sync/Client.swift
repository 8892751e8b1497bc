import Foundation
import Store

/// The user's side: syncs a verified registry into `$TSUKU_HOME/cache` and reads from it.
/// Every read re-verifies: the cached `index.json` against the trusted root, each blob against
/// the hash the index pins. A corrupt cached blob is removed and fetched again from a source.
public final class Client {
  public let home: Home
  public let sources: [String]
  /// One clock reading for the whole command.
  public let now: Date
  /// Where warnings go (stderr in the CLI).
  public let warn: (String) -> Void
  private var stores: [String: any ObjectStore] = [:]
  private var loaded: LoadedIndex?

  /// The audit trail; written once, when the client goes away.
  public let audit: AuditLog

  public init(home: Home, sources: [String], now: Date, warn: @escaping (String) -> Void = { _ in }) {
    self.home = home
    self.sources = sources
    self.now = now
    self.warn = warn
    audit = AuditLog(home: home)
  }

  deinit { try? audit.flush() }

  /// What the client trusts: the saved root and state, or the root built into the binary.
  public func trust() throws -> (TrustedRoot, TrustState) {
    if let t = try home.loadTrust() { return t }
    return (try DefaultRegistry.root(), TrustState())
  }

  /// Makes `url` in the source list mean `store` (for stores with no URL, such as memory).
  public func register(_ store: any ObjectStore, as url: String) { stores[url] = store }

  private func store(_ url: String) throws -> any ObjectStore {
    if let s = stores[url] { return s }
    let s = try StoreURL.open(url)
    stores[url] = s
    return s
  }

  // MARK: sync

  /// What a sync did.
  public struct SyncReport: Sendable, Codable {
    public var source: String
    public var previous_version: Int
    public var index_version: Int
    public var recipes: Int
    public var golden: Int
    public var fetched_blobs: Int
    public var fetched_bytes: Int
    public var up_to_date: Bool
  }

  /// Fetches the newest verified index and every blob it names that the cache lacks, trying
  /// the sources in order. Writes the cache (blobs, then index.json) and only then the trust
  /// state. With `dryRun` nothing is written.
  public func updateRegistry(includeGolden: Bool = true, dryRun: Bool = false) throws -> SyncReport {
    try home.withLock {
      let (root, state) = try trust()
      var failures = [(String, TsukuError)]()
      for url in sources {
        do {
          return try sync(from: url, root: root, state: state, includeGolden: includeGolden, dryRun: dryRun)
        } catch let e as TsukuError {
          failures.append((url, e))
          if e.code == .integrity { audit.record(AuditEvent("verify_failure", time: now, source: url, detail: e.message)) }
          if sources.count > 1 { warn("source '\(url)' failed: \(e.message)") }
        }
      }
      throw Client.combine(failures, what: "no source could be synced")
    }
  }

  private func sync(
    from url: String, root: TrustedRoot, state: TrustState, includeGolden: Bool, dryRun: Bool
  ) throws -> SyncReport {
    let src = try store(url)
    guard let bytes = try src.readDocument(.index, maxSize: Limits.indexFile) else {
      throw TsukuError(.notFound, "'\(url)' has no index.json")
    }
    let hint = try IndexFile.parse(bytes, what: "index.json from '\(url)'").root_version
    let (newRoot, _) = try root.walk(
      to: hint, fetch: { try src.readDocument(.root($0), maxSize: Limits.root) }, source: url)
    let before = state
    var state = state
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
    let commit = (src as? GitStore)?.commitID

    var objects = [Data]()
    var fetchedBytes = 0
    func obtain(_ ref: BlobRef, _ what: String) throws -> Data {
      if let d = try? cache.get(ref.sha256, maxSize: ref.size) { return d }
      let d = try src.get(ref.sha256, maxSize: ref.size)
      objects.append(d)
      fetchedBytes += d.count
      return d
    }
    let tree = try IndexTree.parse(obtain(verified.index.tree, "index tree"), what: "index tree from '\(url)'")
    var entries = [IndexEntry]()
    for s in tree.shards {
      let shard = try IndexShard.parse(obtain(BlobRef(sha256: s.sha256, size: s.size), "shard"), what: "index shard '\(s.prefix)' from '\(url)'")
      entries += shard.entries
    }
    var revoked = [ObjectID: String]()
    if let r = verified.revocation {
      let list = try RevocationList.parse(obtain(r.list, "revocation list"), what: "revocation list from '\(url)'")
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
        if !(try cache.contains(r.sha256)) { wanted.append(r) }
      }
    }
    let got = try src.getMany(wanted.map { ($0.sha256, $0.size) })
    for r in wanted {
      guard let d = got[r.sha256] else {
        throw TsukuError(.notFound, "'\(url)' lacks blob '\(r.sha256.hex)' that its index names")
      }
      objects.append(d)
      fetchedBytes += d.count
    }
    let previous = before.index_version
    let report = SyncReport(
      source: url, previous_version: previous, index_version: verified.index.version, recipes: entries.count,
      golden: entries.reduce(0) { $0 + $1.golden.count }, fetched_blobs: objects.count, fetched_bytes: fetchedBytes,
      up_to_date: previous == verified.index.version && objects.isEmpty)
    if dryRun { return report }
    // A revoked blob is refused from every source and purged from the cache, and the user is
    // told which recipe it was and why.
    for (id, reason) in revoked.sorted(by: { $0.key < $1.key }) where try cache.contains(id) {
      try cache.remove([id])
      warn("'\(names[id] ?? id.hex)' (sha256 \(id.hex.prefix(16))) is revoked: \(reason); removed it from the cache")
      audit.record(AuditEvent("revoked", time: now, name: names[id], sha256: id, source: url, detail: reason))
    }
    try cache.apply(StoreChange(objects: objects, documents: [(.index, bytes)], message: "sync"))
    for id in wanted.map(\.sha256) {
      audit.record(
        AuditEvent("fetch", time: now, name: names[id], sha256: id, source: url, indexVersion: verified.index.version, sourceCommit: commit))
    }
    if newRoot.version != root.version {
      audit.record(AuditEvent("trust_change", time: now, source: url, detail: "root version \(root.version) -> \(newRoot.version)"))
    }
    if let r = verified.revocation, r.version != before.revocation_version {
      audit.record(AuditEvent("trust_change", time: now, source: url, detail: "revocation list version \(before.revocation_version) -> \(r.version)"))
    }
    try home.saveTrust(root: newRoot, state: verified.advancing(state))
    try home.writeCacheMeta(.init(synced_at: Timestamp.format(now), source: url, index_version: verified.index.version))
    loaded = nil
    return report
  }

  /// One error for a list of per-source failures: integrity if every source lied, not found
  /// if every source lacked it, otherwise unavailable.
  static func combine(_ failures: [(String, TsukuError)], what: String) -> TsukuError {
    if failures.count == 1 { return failures[0].1 }
    let codes = Set(failures.map { $0.1.code })
    let code: TsukuError.Code =
      failures.isEmpty ? .unavailable : codes == [.integrity] ? .integrity : codes == [.notFound] ? .notFound : .unavailable
    return TsukuError(code, "\(what): \(failures.count) source\(failures.count == 1 ? "" : "s") tried", details: failures.map { "\($0.0): \($0.1.message)" })
  }

  // MARK: reads

  /// The cached index, verified now against the trusted root.
  public struct LoadedIndex: Sendable {
    public let verified: VerifiedIndex
    public let tree: IndexTree
    public let revoked: [ObjectID: String]
    public var version: Int { verified.index.version }
  }

  /// Loads and verifies the cached index; syncs first when nothing is cached yet.
  public func loadIndex() throws -> LoadedIndex {
    if let l = loaded { return l }
    let cache = home.cache
    if try cache.readDocument(.index, maxSize: Limits.indexFile) == nil {
      _ = try updateRegistry()
    }
    guard let bytes = try cache.readDocument(.index, maxSize: Limits.indexFile) else {
      throw TsukuError(.unavailable, "no registry in the cache; run 'tsuku update-registry'")
    }
    let (root, state) = try trust()
    let verified = try IndexVerifier.verify(bytes, root: root, state: state, now: now, source: home.cacheDir)
    let tree = try IndexTree.parse(try blob(verified.index.tree, what: "index tree"), what: "index tree")
    var revoked = [ObjectID: String]()
    if let r = verified.revocation {
      let list = try RevocationList.parse(try blob(r.list, what: "revocation list"), what: "revocation list")
      for h in list.hashes { revoked[h.sha256] = h.reason }
    }
    let l = LoadedIndex(verified: verified, tree: tree, revoked: revoked)
    loaded = l
    return l
  }

  /// The verified bytes of a blob the index pins: from the cache, else from the sources (and
  /// then cached). A corrupt cached copy is removed, reported and fetched again.
  public func blob(_ ref: BlobRef, what: String, name: String? = nil) throws -> Data {
    let cache = home.cache
    var cacheError: TsukuError?
    do {
      let d = try cache.get(ref.sha256, maxSize: ref.size)
      if let name {
        let age = home.readCacheMeta().flatMap { Timestamp.parse($0.synced_at) }.map { Int(now.timeIntervalSince($0)) }
        audit.record(AuditEvent("cache_hit", time: now, name: name, sha256: ref.sha256, indexVersion: loaded?.version, ageSeconds: age))
      }
      return d
    } catch let e as TsukuError where e.code == .integrity {
      try? cache.remove([ref.sha256])
      warn("cached \(what) was corrupt and has been removed: \(e.message)")
      audit.record(AuditEvent("verify_failure", time: now, name: name, sha256: ref.sha256, source: home.cacheDir, detail: e.message))
      cacheError = e
    } catch let e as TsukuError where e.code == .notFound {}
    var failures = [(String, TsukuError)]()
    for url in sources {
      do {
        let src = try store(url)
        let d = try src.get(ref.sha256, maxSize: ref.size)
        try cache.apply(StoreChange(objects: [d]))
        audit.record(
          AuditEvent("fetch", time: now, name: name ?? what, sha256: ref.sha256, source: url, indexVersion: loaded?.version,
            sourceCommit: (src as? GitStore)?.commitID))
        return d
      } catch let e as TsukuError {
        if e.code == .integrity {
          audit.record(AuditEvent("verify_failure", time: now, name: name, sha256: ref.sha256, source: url, detail: e.message))
        }
        failures.append((url, e))
      }
    }
    if let cacheError, failures.allSatisfy({ $0.1.code != .integrity }) {
      throw TsukuError(.integrity, cacheError.message, details: failures.map { "\($0.0): \($0.1.message)" })
    }
    throw Client.combine(failures, what: "\(what) '\(ref.sha256.hex.prefix(16))' is not cached and")
  }

  /// The index entry of a recipe.
  public func entry(_ name: String) throws -> IndexEntry {
    try RecipeName.validate(name)
    let idx = try loadIndex()
    guard let s = idx.tree.shard(for: name) else { throw notInIndex(name, idx) }
    let shard = try IndexShard.parse(
      try blob(BlobRef(sha256: s.sha256, size: s.size), what: "index shard '\(s.prefix)'"), what: "index shard '\(s.prefix)'")
    guard let e = shard.entries.first(where: { $0.name == name }) else { throw notInIndex(name, idx) }
    return e
  }

  private func notInIndex(_ name: String, _ idx: LoadedIndex) -> TsukuError {
    TsukuError(.notFound, "no recipe named '\(name)' in the registry (index version \(idx.version))")
  }

  private func checkNotRevoked(_ id: ObjectID, _ what: String) throws {
    if let reason = try loadIndex().revoked[id] {
      try? home.cache.remove([id])
      audit.record(AuditEvent("revoked", time: now, name: what, sha256: id, detail: reason))
      throw TsukuError(.integrity, "\(what) '\(id.hex.prefix(16))' is revoked: \(reason)")
    }
  }

  /// The exact bytes of a recipe.
  public func recipe(_ name: String) throws -> Data {
    let e = try entry(name)
    try checkNotRevoked(e.recipe.sha256, "recipe '\(name)'")
    return try blob(e.recipe, what: "recipe '\(name)'", name: name)
  }

  /// The exact bytes of a golden file: for `platform`, at `version` or the newest one.
  public func plan(_ name: String, platform: String, version: String?) throws -> Data {
    let e = try entry(name)
    let onPlatform = e.golden.filter { $0.platform == platform }
    if onPlatform.isEmpty {
      let have = Set(e.golden.map(\.platform)).sorted().joined(separator: ", ")
      throw TsukuError(.notFound, "no golden file for '\(name)' on '\(platform)'" + (have.isEmpty ? "" : " (platforms: \(have))"))
    }
    let chosen: GoldenRef
    if let version {
      guard let g = onPlatform.first(where: { $0.version == version || "v" + $0.version == version }) else {
        let have = onPlatform.map(\.version).joined(separator: ", ")
        throw TsukuError(.notFound, "no golden file for '\(name)' version '\(version)' on '\(platform)' (versions: \(have))")
      }
      chosen = g
    } else {
      chosen = onPlatform.max { VersionOrder.less($0.version, $1.version) }!
    }
    try checkNotRevoked(chosen.sha256, "golden file of '\(name)' \(chosen.version) \(platform)")
    return try blob(
      BlobRef(sha256: chosen.sha256, size: chosen.size), what: "golden file of '\(name)'",
      name: "\(name) \(chosen.version) \(platform)")
  }

  /// Every entry of the index, by name.
  public func entries() throws -> [IndexEntry] {
    let idx = try loadIndex()
    var out = [IndexEntry]()
    for s in idx.tree.shards {
      out += try IndexShard.parse(
        try blob(BlobRef(sha256: s.sha256, size: s.size), what: "index shard '\(s.prefix)'"), what: "index shard '\(s.prefix)'").entries
    }
    return out.sorted { $0.name < $1.name }
  }

  /// Entries whose name or description contains `term` (case-insensitive); name matches first.
  public func search(_ term: String) throws -> [IndexEntry] {
    let t = term.lowercased()
    let all = try entries()
    let byName = all.filter { $0.name.contains(t) }
    let byText = all.filter { !$0.name.contains(t) && $0.description.lowercased().contains(t) }
    let exact = byName.filter { $0.name == t }
    return exact + byName.filter { $0.name != t } + byText
  }
}

/// Orders versions like `1.10.0` > `1.9.2` and `2025-12-02` > `2025-11-30`: numeric runs
/// compare as numbers, everything else as text.
public enum VersionOrder {
  public static func less(_ a: String, _ b: String) -> Bool {
    let pa = parts(a), pb = parts(b)
    for (x, y) in zip(pa, pb) where x != y {
      switch (Int(x), Int(y)) {
      case let (i?, j?): return i < j
      case (_?, nil): return false
      case (nil, _?): return true
      default: return x < y
      }
    }
    return pa.count < pb.count
  }

  private static func parts(_ v: String) -> [String] {
    v.split(whereSeparator: { $0 == "." || $0 == "-" || $0 == "+" || $0 == "_" }).map(String.init)
  }
}
