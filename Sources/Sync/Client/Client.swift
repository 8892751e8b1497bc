import Foundation
import Store

/// The user's side: syncs a verified registry into `$TSUKU_HOME/cache` and reads from it.
///
/// Every read re-verifies: the cached `index.json` against the trusted root, each blob against
/// the hash the index pins. A corrupt cached blob is removed and fetched again from a source.
/// Sources are tried as the chain says (see `SourceChain`); when every source fails, the
/// verified cache is served with a warning that says how old it is, up to the policy's bound.
///
/// The work is split as the trust decisions, the workflow and the cache are: `TrustedMetadata`
/// decides what is trusted, `Updater` runs one sync, `LocalCache` owns the cache and its
/// index, `Recorder` holds what the command records until `flush()`.
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
  /// The audit events, cache reads and metrics of this command, written by `flush()`.
  public let recorder: Recorder
  /// The audit trail; written by `flush()`.
  public var audit: AuditLog { recorder.audit }
  /// What this command fetched, hit, missed and refused; added to `$TSUKU_HOME/metrics.state.*`
  /// by `flush()`.
  public var metrics: ClientMetrics { recorder.metrics }
  let cache: LocalCache
  let runner: SourceRunner
  var stores: [String: any ObjectReader] = [:]
  var loaded: LoadedIndex?
  var warnedStale = false
  var trustMemo: (TrustedRoot, TrustState)?
  var usingEmbedded = false
  /// True once this command has asked the sources for a fresh index (a sync, or the check of
  /// a missing name).
  var refreshTried = false
  /// Sources given as stores (`register`), not opened from their URL.
  var registered = Set<String>()
  /// The network budget of this command (`TSUKU_API_TIMEOUT`), shared by every request to
  /// every remote source it opens; its clock starts with the first request.
  var deadline: Deadline?

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
    recorder = Recorder(home: home, now: now)
    cache = LocalCache(home: home, access: recorder.access)
    runner = SourceRunner(chain: chain, warn: warn)
  }

  public convenience init(home: Home, sources: [String], now: Date, warn: @escaping (String) -> Void = { _ in }) {
    self.init(home: home, chain: SourceChain(sources), now: now, warn: warn)
  }

  /// Writes what this command recorded (audit events, cache reads, metrics). The command
  /// calls it once when it ends, whether it succeeded or failed.
  public func flush() {
    reportDamagedPacks()
    recorder.flush(warn: warn)
  }

  /// What the client trusts: the saved root and state, or the root built into the binary.
  /// Read once per command (a sync reloads it).
  public func trust() throws -> (TrustedRoot, TrustState) {
    if let t = trustMemo { return t }
    let t = try home.loadTrust() ?? (try DefaultRegistry.root(), TrustState())
    trustMemo = t
    return t
  }

  /// The trusted set, as of this command's clock reading, for judging a new index.
  func trustedMetadata() throws -> TrustedMetadata {
    let (root, state) = try trust()
    return TrustedMetadata(root: root, state: state, now: now)
  }

  /// Makes `url` in the source list mean `store` (for stores with no URL, such as memory).
  public func register(_ store: any ObjectReader, as url: String) {
    stores[url] = store
    registered.insert(url)
  }

  func store(_ url: String) throws -> any ObjectReader {
    if let s = stores[url] { return s }
    if deadline == nil { deadline = Deadline(startingAtFirstUse: try TransportOptions.apiTimeout()) }
    let s = try openReader(url, deadline: deadline)
    stores[url] = s
    return s
  }

  /// The store `url` names, its requests bounded by `deadline`.
  func openReader(_ url: String, deadline: Deadline?) throws -> any ObjectReader {
    if registered.contains(url), let s = stores[url] { return s }
    // A git source also serves blobs that have left its tip, from a window of its history.
    let history =
      TsukuMetrics.backend(of: url) == "git"
      ? StoreURL.GitHistoryWindow(
        days: try GitHistoryDays.fromEnvironment(), cacheDirectory: home.cacheDir + "/git-history") : nil
    return try StoreURL.openReader(url, history: history, deadline: deadline)
  }

  /// The store `url` names, with every request timed and counted under its backend's label.
  func source(_ url: String) throws -> Source {
    let backend = TsukuMetrics.backend(of: url)
    do {
      return MeteredSource(store: try store(url), backend: backend, metrics: metrics, now: now)
    } catch {
      metrics.fetchFailed(backend: backend, error)
      throw error
    }
  }

  // MARK: blobs

  /// The verified bytes of a blob the index pins: from the cache, else from the sources (and
  /// then cached), else from the set built into the binary. A corrupt cached copy is removed,
  /// reported and fetched again. `kind` is the metrics label of the read.
  public func blob(_ ref: BlobRef, what: String, name: String? = nil, kind: BlobKind = .index) throws -> Data {
    var cacheError: TsukuError?
    do {
      let d = try cache.store.get(ref.sha256, maxSize: ref.size)
      recorder.cacheRead(ref.sha256, hit: true)
      metrics.cacheHit(kind)
      if let name {
        let age = loaded?.confirmedAt.map { Int(now.timeIntervalSince($0)) }
        recorder.record(
          AuditEvent(
            "cache_hit", time: now, name: name, sha256: ref.sha256, indexVersion: loaded?.version, ageSeconds: age,
            kind: kind))
      }
      return d
    } catch let e as TsukuError where e.code == .integrity {
      try? cache.store.remove([ref.sha256])
      warn("cached \(what) was corrupt and has been removed: \(e.message)")
      recorder.record(
        AuditEvent(
          "verify_failure", time: now, name: name, sha256: ref.sha256, source: home.cacheDir, detail: e.message))
      metrics.verificationFailed(backend: "cache", e)
      cacheError = e
    } catch let e as TsukuError where e.code == .notFound {}
    metrics.cacheMiss(kind)
    do {
      let d = try runner.first("\(what) '\(ref.sha256.hex.prefix(16))' is not cached and no source has it") { url in
        let src = try source(url)
        do {
          let d = try src.get(ref.sha256, maxSize: ref.size)
          recorder.record(
            AuditEvent(
              "fetch", time: now, name: name ?? what, sha256: ref.sha256, source: url, indexVersion: loaded?.version,
              sourceCommit: src.revision(of: ref.sha256), kind: kind))
          return d
        } catch let e as TsukuError {
          if e.code == .integrity {
            recorder.record(
              AuditEvent("verify_failure", time: now, name: name, sha256: ref.sha256, source: url, detail: e.message))
            metrics.verificationFailed(backend: TsukuMetrics.backend(of: url), e)
          }
          throw e
        }
      }
      recorder.cacheRead(ref.sha256, hit: false)
      _ = try? cache.store.apply(StoreChange(objects: [d]))
      return d
    } catch let e as TsukuError {
      if let d = EmbeddedSet.blob(ref.sha256), d.count <= ref.size { return d }
      if let cacheError, e.code != .integrity {
        throw TsukuError(.integrity, cacheError.message, reason: cacheError.reason, details: [e.message] + e.details)
      }
      throw e
    }
  }
}
