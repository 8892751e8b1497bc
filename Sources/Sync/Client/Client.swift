import Foundation
import Store

/// The user's side: syncs a verified registry into `$TSUKU_HOME/cache` and reads from it.
///
/// Every read re-verifies: the cached `index.json` against the trusted root, each blob against
/// the hash the index pins. A corrupt cached blob is removed and fetched again from a source.
/// Sources are tried as the chain says (see `SourceChain`); when every source fails, the
/// verified cache is served with a warning that says how old it is, up to the policy's bound.
public final class Client {
  public let home: Home
  public let chain: SourceChain
  public let policy: CachePolicy
  /// One clock reading for the whole command.
  public let now: Date
  /// Refresh from the sources whatever the TTL says.
  public let force: Bool
  /// Where warnings go (stderr in the CLI).
  public let warn: (String) -> Void
  /// The audit trail; written once, when the client goes away.
  public let audit: AuditLog
  /// What this command fetched, hit, missed and refused; added to `$TSUKU_HOME/metrics.state.*`
  /// when the client goes away.
  public let metrics = ClientMetrics()
  let runner: SourceRunner
  var stores: [String: any ObjectReader] = [:]
  var loaded: LoadedIndex?
  var accessed = [(ObjectID, Bool)]()
  var warnedStale = false
  var trusted: (TrustedRoot, TrustState)?
  var usingEmbedded = false

  public var sources: [String] { chain.urls }

  public init(
    home: Home, chain: SourceChain, policy: CachePolicy = CachePolicy(), now: Date, force: Bool = false,
    warn: @escaping (String) -> Void = { _ in }
  ) {
    self.home = home
    self.chain = chain
    self.policy = policy
    self.now = now
    self.force = force
    self.warn = warn
    audit = AuditLog(home: home)
    runner = SourceRunner(chain: chain, warn: warn)
  }

  public convenience init(home: Home, sources: [String], now: Date, warn: @escaping (String) -> Void = { _ in }) {
    self.init(home: home, chain: SourceChain(sources), now: now, warn: warn)
  }

  deinit {
    try? audit.flush()
    flushAccess()
    metrics.flush(to: home)
  }

  /// What the client trusts: the saved root and state, or the root built into the binary.
  /// Read once per command (a sync reloads it).
  public func trust() throws -> (TrustedRoot, TrustState) {
    if let t = trusted { return t }
    let t = try home.loadTrust() ?? (try DefaultRegistry.root(), TrustState())
    trusted = t
    return t
  }

  /// Makes `url` in the source list mean `store` (for stores with no URL, such as memory).
  public func register(_ store: any ObjectStore, as url: String) { stores[url] = store }

  func store(_ url: String) throws -> any ObjectReader {
    if let s = stores[url] { return s }
    // A git source also serves blobs that have left its tip, from a window of its history.
    let history = TsukuMetrics.backend(of: url) == "git"
      ? StoreURL.GitHistoryWindow(days: try GitHistoryDays.fromEnvironment(), cacheDirectory: home.cacheDir + "/git-history") : nil
    let s = try StoreURL.openReader(url, history: history)
    stores[url] = s
    return s
  }

  /// The store `url` names, with every request timed and counted under its backend's label.
  func source(_ url: String) throws -> MeteredSource {
    let backend = TsukuMetrics.backend(of: url)
    do {
      return MeteredSource(store: try store(url), backend: backend, metrics: metrics, now: now)
    } catch {
      metrics.fetchFailed(backend: backend, error)
      throw error
    }
  }

  // MARK: the index

  /// The cached index, verified against the trusted root.
  public struct LoadedIndex: Sendable {
    public let verified: VerifiedIndex
    public let tree: IndexTree
    public let revoked: [ObjectID: String]
    /// When a source last confirmed this index.
    public let confirmedAt: Date?
    /// True when it is served because no source could confirm it within the TTL.
    public let stale: Bool
    public var version: Int { verified.index.version }
  }

  /// Loads the cached index, refreshing it first when it is missing, older than the TTL (or
  /// `force`), or older than an index this client has trusted. When the refresh fails, the
  /// verified cache is served — stale — while it is younger than TTL + max-stale, its expiry
  /// judged at the time a source last confirmed it.
  public func loadIndex(for name: String? = nil) throws -> LoadedIndex {
    if let l = loaded { return l }
    let cache = home.cache
    let (_, state) = try trust()
    var bytes = try cache.readDocument(.index, maxSize: Limits.indexFile)
    let confirmed = home.readCacheMeta().flatMap { Timestamp.parse($0.confirmed_at ?? $0.synced_at) }
    let age = confirmed.map { now.timeIntervalSince($0) } ?? .infinity
    // Unverified here: only what decides whether to refresh (the full check follows).
    let cachedPayload = bytes.flatMap { try? IndexFile.parse($0, what: "cache") }.flatMap {
      $0.index.payloadBytes.flatMap { try? IndexPayload.parse($0, what: "cache") }
    }
    let cachedVersion = cachedPayload?.version
    let expired = cachedPayload?.expiryDate.map { $0 <= now } ?? false
    let behind = (cachedVersion ?? 0) < state.index_version
    var refreshError: TsukuError?
    var refreshed = false
    if bytes == nil || force || age > policy.ttl || behind || expired {
      if chain.isEmpty {
        refreshError = TsukuError(.unavailable, "no sources (offline, or TSUKU_SOURCES=off)")
      } else {
        do {
          _ = try updateRegistry()
          refreshed = true
          bytes = try cache.readDocument(.index, maxSize: Limits.indexFile)
        } catch let e as TsukuError {
          refreshError = e
        }
      }
    }
    guard let bytes else {
      let what = name.map { "no source reachable and no cached copy of '\($0)'" } ?? "no source reachable and no cached registry"
      let e = refreshError ?? TsukuError(.unavailable, what)
      let code: TsukuError.Code = e.code == .integrity || e.code == .usage ? e.code : .unavailable
      throw TsukuError(code, what, details: [e.message] + e.details)
    }
    let (root, trusted) = try trust()
    let verified: VerifiedIndex
    var stale = false
    if refreshed || refreshError == nil {
      do {
        verified = try IndexVerifier.verify(bytes, root: root, state: trusted, now: now, source: home.cacheDir)
      } catch let e as TsukuError where e.code == .integrity && !refreshed && !chain.isEmpty {
        // The cached index no longer verifies (say a crash left it ahead of the trust state, or
        // trust moved on): fetch a fresh one rather than fail.
        warn("the cached index does not verify (\(e.message)); fetching a fresh one")
        _ = try updateRegistry()
        let (root2, trusted2) = try trust()
        guard let fresh = try cache.readDocument(.index, maxSize: Limits.indexFile) else { throw e }
        verified = try IndexVerifier.verify(fresh, root: root2, state: trusted2, now: now, source: home.cacheDir)
        refreshed = true
      }
    } else {
      // Every source failed: the verified cache, judged as of its last confirmation.
      let limit = policy.ttl + policy.maxStale
      guard let confirmed, age <= limit else {
        throw TsukuError(
          .unavailable,
          "cached registry is \(confirmed.map { Duration.describe(now.timeIntervalSince($0)) } ?? "of unknown age") old, more than the \(Duration.describe(limit)) allowed (TTL \(Duration.describe(policy.ttl)) + max stale \(Duration.describe(policy.maxStale))), and no source is reachable",
          details: [refreshError!.message] + refreshError!.details)
      }
      var lenient = trusted
      if behind {
        warnOnce("the cached index (version \(cachedVersion ?? 0)) is older than version \(trusted.index_version) seen before; run 'tsuku update-registry'")
        lenient = TrustState()
      }
      verified = try IndexVerifier.verify(bytes, root: root, state: lenient, now: min(now, confirmed), source: home.cacheDir)
      stale = age > policy.ttl || behind
    }
    let tree = try IndexTree.parse(try blob(verified.index.tree, what: "index tree"), what: "index tree")
    var revoked = [ObjectID: String]()
    if let r = verified.revocation {
      let list = try RevocationList.parse(try blob(r.list, what: "revocation list"), what: "revocation list")
      for h in list.hashes { revoked[h.sha256] = h.reason }
    }
    let confirmedNow = refreshed ? now : confirmed
    let l = LoadedIndex(verified: verified, tree: tree, revoked: revoked, confirmedAt: confirmedNow, stale: stale)
    loaded = l
    return l
  }

  func warnOnce(_ text: String) {
    if warnedStale { return }
    warnedStale = true
    warn(text)
  }

  /// Says, once per command, that a recipe comes from a stale cache.
  func noteStale(_ what: String) {
    guard let l = loaded, l.stale else { return }
    let age = l.confirmedAt.map { Duration.describe(now.timeIntervalSince($0)) + " ago" } ?? "at an unknown time"
    warnOnce("using cached \(what) (last updated \(age)); run 'tsuku update-registry' when online")
  }

  // MARK: blobs

  /// The verified bytes of a blob the index pins: from the cache, else from the sources (and
  /// then cached), else from the set built into the binary. A corrupt cached copy is removed,
  /// reported and fetched again. `kind` is the metrics label of the read.
  public func blob(_ ref: BlobRef, what: String, name: String? = nil, kind: BlobKind = .index) throws -> Data {
    let cache = home.cache
    var cacheError: TsukuError?
    do {
      let d = try cache.get(ref.sha256, maxSize: ref.size)
      accessed.append((ref.sha256, true))
      metrics.cacheHit(kind)
      if let name {
        let age = loaded?.confirmedAt.map { Int(now.timeIntervalSince($0)) }
        audit.record(AuditEvent("cache_hit", time: now, name: name, sha256: ref.sha256, indexVersion: loaded?.version, ageSeconds: age))
      }
      return d
    } catch let e as TsukuError where e.code == .integrity {
      try? cache.remove([ref.sha256])
      warn("cached \(what) was corrupt and has been removed: \(e.message)")
      audit.record(AuditEvent("verify_failure", time: now, name: name, sha256: ref.sha256, source: home.cacheDir, detail: e.message))
      metrics.verificationFailed(backend: "cache", e)
      cacheError = e
    } catch let e as TsukuError where e.code == .notFound {}
    metrics.cacheMiss(kind)
    do {
      let d = try runner.first("\(what) '\(ref.sha256.hex.prefix(16))' is not cached and no source has it") { url in
        let src = try source(url)
        do {
          let d = try src.get(ref.sha256, maxSize: ref.size)
          audit.record(
            AuditEvent("fetch", time: now, name: name ?? what, sha256: ref.sha256, source: url, indexVersion: loaded?.version,
              sourceCommit: src.revision(of: ref.sha256)))
          return d
        } catch let e as TsukuError {
          if e.code == .integrity {
            audit.record(AuditEvent("verify_failure", time: now, name: name, sha256: ref.sha256, source: url, detail: e.message))
            metrics.verificationFailed(backend: src.backend, e)
          }
          throw e
        }
      }
      accessed.append((ref.sha256, false))
      _ = try? cache.apply(StoreChange(objects: [d]))
      return d
    } catch let e as TsukuError {
      if let d = EmbeddedSet.blob(ref.sha256), d.count <= ref.size { return d }
      if let cacheError, e.code != .integrity {
        throw TsukuError(.integrity, cacheError.message, details: [e.message] + e.details)
      }
      throw e
    }
  }

  // MARK: reads

  /// The index entry of a recipe; the built-in entry of a critical recipe when no index is
  /// available at all.
  public func entry(_ name: String) throws -> IndexEntry {
    try RecipeName.validate(name)
    let idx: LoadedIndex
    do {
      idx = try loadIndex(for: name)
    } catch let e as TsukuError where e.code == .unavailable {
      if let embedded = EmbeddedSet.entry(name), embeddedSetApplies() {
        usingEmbedded = true
        return embedded
      }
      throw e
    }
    guard let s = try idx.tree.shard(for: name, fetch: { try blob($0, what: $1) }) else { throw notInIndex(name, idx) }
    let shard = try IndexShard.parse(
      try blob(BlobRef(sha256: s.sha256, size: s.size), what: "index shard '\(s.prefix)'"), what: "index shard '\(s.prefix)'")
    guard let e = shard.entries.first(where: { $0.name == name }) else { throw notInIndex(name, idx) }
    return e
  }

  private func notInIndex(_ name: String, _ idx: LoadedIndex) -> TsukuError {
    TsukuError(.notFound, "no recipe named '\(name)' in the registry (index version \(idx.version))")
  }

  /// The built-in set belongs to the default registry: it is served to a home that trusts
  /// nothing yet, or trusts a root sharing a root key with the one built in.
  func embeddedSetApplies() -> Bool {
    guard let (root, _) = try? home.loadTrust() else { return true }
    guard let builtIn = try? DefaultRegistry.root() else { return false }
    let mine = Set(root.payload.roles[Role.root.rawValue]?.keyids ?? [])
    return root.bytes == builtIn.bytes || !mine.isDisjoint(with: builtIn.payload.roles[Role.root.rawValue]?.keyids ?? [])
  }

  /// The revoked hashes of the cached index when no index can be loaded now (its signatures
  /// checked, not its freshness): a revocation never goes stale.
  func cachedRevocations() -> [ObjectID: String] {
    guard let bytes = try? home.cache.readDocument(.index, maxSize: Limits.indexFile), let (root, _) = try? trust(),
      let v = try? IndexVerifier.verify(bytes, root: root, state: TrustState(), now: .distantPast, source: "cache"),
      let r = v.revocation, let data = try? home.cache.get(r.list.sha256, maxSize: r.list.size),
      let list = try? RevocationList.parse(data, what: "revocation list")
    else { return [:] }
    return Dictionary(list.hashes.map { ($0.sha256, $0.reason) }, uniquingKeysWith: { a, _ in a })
  }

  private func checkNotRevoked(_ id: ObjectID, _ what: String, name: String, kind: BlobKind) throws {
    let revoked: [ObjectID: String]
    if let l = loaded {
      revoked = l.revoked
    } else if usingEmbedded {
      revoked = cachedRevocations()
    } else if let l = try? loadIndex() {
      revoked = l.revoked
    } else {
      revoked = cachedRevocations()
    }
    if let reason = revoked[id] {
      try? home.cache.remove([id])
      audit.record(AuditEvent("revoked", time: now, name: name, sha256: id, detail: reason))
      metrics.revocationRefused(kind)
      throw TsukuError(.integrity, "\(what) (sha256 \(id.hex.prefix(16))) is revoked: \(reason)")
    }
  }

  /// The exact bytes of a recipe.
  public func recipe(_ name: String) throws -> Data {
    let e = try entry(name)
    try checkNotRevoked(e.recipe.sha256, "recipe '\(name)'", name: name, kind: .recipe)
    let d = try blob(e.recipe, what: "recipe '\(name)'", name: name, kind: .recipe)
    noteStale("recipe '\(name)'")
    return d
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
    try checkNotRevoked(chosen.sha256, "golden file of '\(name)' \(chosen.version) \(platform)", name: name, kind: .golden)
    let d = try blob(
      BlobRef(sha256: chosen.sha256, size: chosen.size), what: "golden file of '\(name)'",
      name: "\(name) \(chosen.version) \(platform)", kind: .golden)
    noteStale("golden file of '\(name)'")
    return d
  }

  /// Every entry of the index, by name.
  public func entries() throws -> [IndexEntry] {
    let idx = try loadIndex()
    var out = [IndexEntry]()
    for s in try idx.tree.allShards(fetch: { try blob($0, what: $1) }) {
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
