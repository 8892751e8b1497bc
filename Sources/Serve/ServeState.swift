import Foundation
import Store
import Sync
import Synchronization

/// The snapshot being served, swapped whole after a refresh, and the server's own counters.
/// A refresh runs on its own thread: a request only ever reads the current snapshot.
public final class ServeState: Sendable {
  public let settings: ServeSettings
  let log: RequestLog
  private let current = Mutex<Snapshot?>(nil)
  private let lastError = Mutex<String?>(nil)
  private let refreshing = Atomic<Bool>(false)
  /// When the last background refresh started: at most one every `minRefreshInterval`.
  private let lastAttempt = Mutex<Date>(.distantPast)
  static let minRefreshInterval: Double = 10
  private let requests = Mutex<[Int: Int]>([:])
  let refetches = Atomic<Int>(0)

  public init(settings: ServeSettings, log: RequestLog) {
    self.settings = settings
    self.log = log
  }

  public var snapshot: Snapshot? { current.withLock { $0 } }
  public var loadError: String? { lastError.withLock { $0 } }

  /// Builds a snapshot now (on the calling thread) and swaps it in; on failure the previous
  /// one stays and the error is kept for /healthz.
  @discardableResult
  public func reload() -> Bool {
    do {
      let s = try Snapshot.load(settings, warn: { [log] in log.warn($0) })
      let old = current.withLock { c -> Snapshot? in
        let o = c
        c = s
        return o
      }
      lastError.withLock { $0 = nil }
      if old?.version != s.version || old == nil {
        log.info("serving index version \(s.version): \(s.recipes.count) recipes, \(s.plans.count) golden files")
      }
      return true
    } catch {
      let e = (error as? TsukuError) ?? TsukuError.converting(error)
      lastError.withLock { $0 = e.detailed }
      log.warn("could not load the registry: \(e.detailed)")
      return false
    }
  }

  /// Whether the snapshot should be rebuilt: none yet, or its last confirmation older than
  /// the revocation TTL (a new client then asks the sources, as `tsuku show` would).
  func refreshDue(now: Date) -> Bool {
    guard let s = snapshot else { return true }
    if settings.offline { return false }
    return now.timeIntervalSince(s.confirmedAt) > settings.policy.revocationTTL || now >= s.expires
  }

  /// Starts a refresh on a thread of its own unless one is running; never waits for it.
  func refreshInBackground() {
    if settings.offline && snapshot != nil { return }
    let now = Date()
    guard
      lastAttempt.withLock({ last in
        if now.timeIntervalSince(last) < Self.minRefreshInterval { return false }
        last = now
        return true
      })
    else { return }
    guard refreshing.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    else { return }
    let t = Thread { [self] in
      reload()
      refreshing.store(false, ordering: .releasing)
    }
    t.name = "tsuku-serve refresh"
    t.start()
  }

  /// Checks every `interval` seconds whether a refresh is due, for as long as the process runs.
  public func startRefreshTimer(interval: Double) {
    let t = Thread { [self] in
      while true {
        Thread.sleep(forTimeInterval: interval)
        if refreshDue(now: Date()) { refreshInBackground() }
      }
    }
    t.name = "tsuku-serve refresh timer"
    t.start()
  }

  func count(status: Int) { requests.withLock { $0[status, default: 0] += 1 } }

  /// The server's own series, after the home's.
  func metricsText(now: Date) -> String {
    var out = ""
    if let m = try? settings.home.readMetrics() { out += m.prometheusText() }
    out += "# HELP tsuku_serve_requests_total Requests answered by tsuku serve, by status code.\n"
    out += "# TYPE tsuku_serve_requests_total counter\n"
    for (code, n) in requests.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
      out += "tsuku_serve_requests_total{code=\"\(code)\"} \(n)\n"
    }
    out += "# HELP tsuku_serve_refetches_total Cached blobs found corrupt or missing and fetched again.\n"
    out += "# TYPE tsuku_serve_refetches_total counter\n"
    out += "tsuku_serve_refetches_total \(refetches.load(ordering: .relaxed))\n"
    if let s = snapshot {
      out += "# HELP tsuku_serve_index_version Version of the served index.\n"
      out += "# TYPE tsuku_serve_index_version gauge\n"
      out += "tsuku_serve_index_version \(s.version)\n"
      out += "# HELP tsuku_serve_index_age_seconds Seconds since a source last confirmed the served index.\n"
      out += "# TYPE tsuku_serve_index_age_seconds gauge\n"
      out += "tsuku_serve_index_age_seconds \(Int(now.timeIntervalSince(s.confirmedAt)))\n"
    }
    return out
  }
}
