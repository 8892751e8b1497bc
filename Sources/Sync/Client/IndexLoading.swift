import Foundation
import Store

extension Client {
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
  /// `force`), or older than an index this client has trusted; inside the TTL, its
  /// revocations are checked first when older than the revocation TTL (`checkRevocations`). When the refresh fails, the
  /// verified cache is served — stale — while it is younger than TTL + max-stale, its expiry
  /// judged at the time a source last confirmed it.
  public func loadIndex(for name: String? = nil) throws -> LoadedIndex {
    if let l = loaded { return l }
    let start = try trustedMetadata()
    var cached = try cache.index()
    let confirmed = home.readCacheMeta().flatMap { Timestamp.parse($0.confirmed_at ?? $0.synced_at) }
    let age = confirmed.map { now.timeIntervalSince($0) } ?? .infinity
    // Unverified here: only what decides whether to refresh (the full check follows).
    let cachedVersion = cached?.payload?.version
    let expired = cached?.payload?.expiryDate.map { $0 <= now } ?? false
    let behind = start.isBehind(cachedVersion)
    var refreshError: TsukuError?
    var refreshed = false
    if cached == nil || force || age > policy.ttl || behind || expired {
      if chain.isEmpty {
        refreshError = TsukuError(.unavailable, chain.emptyReason ?? "no sources (offline, or TSUKU_SOURCES=off)")
      } else {
        do {
          _ = try updateRegistry()
          refreshed = true
          cached = try cache.index()
        } catch let e as TsukuError {
          refreshError = e
        }
      }
    } else if revocationCheckDue(confirmed: confirmed), case .answered = checkRevocations(confirmed: confirmed!) {
      // Within the recipe TTL but past the revocation TTL (see `checkRevocations`).
      refreshed = true
      cached = try cache.index()
    }
    guard let bytes = cached?.bytes else {
      let what =
        name.map { "no source reachable and no cached copy of '\($0)'" } ?? "no source reachable and no cached registry"
      let e = refreshError ?? TsukuError(.unavailable, what)
      let code: TsukuError.Code = e.code == .integrity || e.code == .usage ? e.code : .unavailable
      throw TsukuError(code, what, reason: e.reason, details: [e.message] + e.details)
    }
    var trusted = try trustedMetadata()
    var stale = false
    if refreshed || refreshError == nil {
      do {
        try trusted.updateIndex(bytes, source: home.cacheDir)
      } catch let e as TsukuError where e.code == .integrity && !refreshed && !chain.isEmpty {
        // The cached index no longer verifies (say a crash left it ahead of the trust state, or
        // trust moved on): fetch a fresh one rather than fail.
        warn("the cached index does not verify (\(e.message)); fetching a fresh one")
        _ = try updateRegistry()
        trusted = try trustedMetadata()
        guard let fresh = try cache.index()?.bytes else { throw e }
        try trusted.updateIndex(fresh, source: home.cacheDir)
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
      if behind {
        warnOnce(
          "the cached index (version \(cachedVersion ?? 0)) is older than version \(trusted.state.index_version) seen before; run 'tsuku update-registry'"
        )
      }
      try trusted.updateIndex(stale: bytes, confirmed: confirmed, behind: behind, source: home.cacheDir)
      stale = age > policy.ttl || behind
      // A stale cache says so when a recipe is served from it; a cache still within its TTL
      // (a refresh forced, or asked for by an expired or older index) says here why the
      // refresh failed, whatever the cause, so that a rollback or a refused key is not silent.
      if !stale, let e = refreshError { warnOnce(refreshFailed(e, version: cachedVersion, confirmed: confirmed)) }
    }
    guard let verified = trusted.index else { throw TsukuError(.other, "no index was accepted") }
    let tree = try IndexTree.parse(try blob(verified.index.tree, what: "index tree"), what: "index tree")
    if let r = verified.revocation {
      try trusted.updateRevocationList(try blob(r.list, what: "revocation list"), what: "revocation list")
    }
    let l = LoadedIndex(
      verified: verified, tree: tree, revoked: trusted.revoked, confirmedAt: refreshed ? now : confirmed, stale: stale)
    loaded = l
    return l
  }

  /// The walk from the loaded index's tree to its shards, reading through `blob`.
  func walk(_ idx: LoadedIndex) -> IndexWalk { IndexWalk(idx.tree, read: { try self.blob($0, what: $1) }) }

  /// `could not refresh from 'url': why; using the cached index (version 3, confirmed 2 hours ago)`.
  func refreshFailed(_ e: TsukuError, version: Int?, confirmed: Date) -> String {
    let from = chain.urls.count == 1 ? "'\(chain.urls[0])'" : "the sources (\(chain.description))"
    let why = ([e.message] + e.details).joined(separator: "; ")
    let age = Duration.describe(now.timeIntervalSince(confirmed))
    return
      "could not refresh from \(from): \(why); using the cached index (version \(version ?? 0), confirmed \(age) ago)"
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
}
