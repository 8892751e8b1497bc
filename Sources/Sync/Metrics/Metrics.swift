import CoreMetrics
import Foundation
import Store

/// One metric tsuku records: the name, type, labels and help text that `tsuku metrics` prints
/// and docs/operations.md lists. Label values come from small fixed sets (never a recipe name,
/// a URL or a hash), so the number of series stays bounded.
public struct MetricInfo: Sendable, Equatable {
  public enum Kind: String, Sendable { case counter, gauge, histogram }
  public let name: String
  public let kind: Kind
  public let labels: [String]
  public let help: String
}

/// Every metric tsuku records.
public enum TsukuMetrics {
  public static let fetchDuration = MetricInfo(
    name: "tsuku_fetch_duration_seconds", kind: .histogram, labels: ["backend", "op"],
    help: "Time a successful request to a source took (op: blob, batch of blobs, document).")
  public static let fetchedObjects = MetricInfo(
    name: "tsuku_fetched_objects_total", kind: .counter, labels: ["backend", "what"],
    help: "Verified objects received from sources (what: blob, a pack counting as one; document).")
  public static let fetchedBytes = MetricInfo(
    name: "tsuku_fetched_bytes_total", kind: .counter, labels: ["backend", "what"],
    help: "Bytes of the verified objects received from sources.")
  public static let fetchErrors = MetricInfo(
    name: "tsuku_fetch_errors_total", kind: .counter, labels: ["backend", "class"],
    help: "Failed requests to sources, by error class (not-found, integrity, unavailable, usage, other).")
  public static let cacheHits = MetricInfo(
    name: "tsuku_cache_hits_total", kind: .counter, labels: ["kind"],
    help: "Reads served from the verified cache (kind: recipe, golden, index).")
  public static let cacheMisses = MetricInfo(
    name: "tsuku_cache_misses_total", kind: .counter, labels: ["kind"],
    help: "Reads the cache could not serve (absent or corrupt), so a source was asked.")
  public static let verificationFailures = MetricInfo(
    name: "tsuku_verification_failures_total", kind: .counter, labels: ["backend", "reason"],
    help:
      "Bytes refused by verification (reason: hash_mismatch, bad_signature, rollback, expired, too_large, malformed; backend cache: the local cache).")
  public static let revocationRefusals = MetricInfo(
    name: "tsuku_revocation_refusals_total", kind: .counter, labels: ["kind"],
    help: "Reads refused because the signed revocation list names the blob (kind: recipe, golden).")

  public static let all: [MetricInfo] = [
    fetchDuration, fetchedObjects, fetchedBytes, fetchErrors, cacheHits, cacheMisses, verificationFailures,
    revocationRefusals,
  ]

  static let byName: [String: MetricInfo] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

  /// The upper bounds of the fetch latency histogram, in nanoseconds: 0.5 ms to 30 s.
  public static let fetchBuckets: [Int64] = [
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000,
    500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000,
  ]

  /// How many fetches `recent_fetches` keeps (and `tsuku info` takes the median of).
  public static let recentFetches = 10

  /// The backend label of a source URL: its scheme kind.
  public static func backend(of url: String) -> String {
    let u = url.lowercased()
    if u.hasPrefix("s3://") { return "s3" }
    if u.hasPrefix("https://") || u.hasPrefix("http://") { return "http" }
    if u.hasPrefix("git+") { return "git" }
    if u.hasPrefix("file://") || !u.contains("://") { return "file" }
    return "other"
  }

  /// The reason label of a verification failure: the reason set where it was thrown, never
  /// read from the message (a refusal thrown without one counts as `malformed`).
  public static func reason(of e: TsukuError) -> String {
    (e.reason ?? .malformed).label
  }
}

/// What a read from the cache or a source was for: the `kind` label.
public enum BlobKind: String, Sendable {
  case index, recipe, golden
}

/// One fetch remembered for `tsuku info`: which backend, how long, how many bytes, when.
public struct FetchRecord: Codable, Sendable, Equatable {
  public var backend: String
  public var op: String
  public var seconds: Double
  public var bytes: Int
  public var time: String
  public init(backend: String, op: String, seconds: Double, bytes: Int, time: String) {
    (self.backend, self.op, self.seconds, self.bytes, self.time) = (backend, op, seconds, bytes, time)
  }
}

/// A swift-metrics backend that keeps what one command recorded, to be added to the cumulative
/// state in `$TSUKU_HOME/metrics.state.*` when the command ends (`Home.addMetrics`). Counters add up,
/// timers fill histogram buckets (`TsukuMetrics.fetchBuckets`, or `bounds` per label), meters
/// and recorders keep their last value as a gauge.
public final class MetricsCollector: MetricsFactory, @unchecked Sendable {
  private let lock = NSLock()
  private var state = MetricsState()
  private let bounds: [String: [Int64]]

  public init(bounds: [String: [Int64]] = [:]) { self.bounds = bounds }

  /// True when nothing was recorded.
  public var isEmpty: Bool { lock.withLock { state.isEmpty } }

  /// What was recorded so far (and, with `reset`, forgets it).
  public func snapshot(reset: Bool = false) -> MetricsState {
    lock.withLock {
      let s = state
      if reset { state = MetricsState() }
      return s
    }
  }

  func add(_ key: SeriesKey, _ amount: Double) { lock.withLock { state.counters[key, default: 0] += amount } }
  func set(_ key: SeriesKey, _ value: Double) { lock.withLock { state.gauges[key] = value } }
  func observe(_ key: SeriesKey, nanoseconds: Int64) {
    lock.withLock {
      var h = state.histograms[key] ?? HistogramData(bounds: bounds[key.name] ?? TsukuMetrics.fetchBuckets)
      h.observe(nanoseconds)
      state.histograms[key] = h
    }
  }
  func remember(_ r: FetchRecord) {
    lock.withLock {
      state.recent.append(r)
      if state.recent.count > TsukuMetrics.recentFetches { state.recent.removeFirst(state.recent.count - TsukuMetrics.recentFetches) }
    }
  }

  public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
    Handler(self, SeriesKey(label, dimensions))
  }
  public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
    Handler(self, SeriesKey(label, dimensions))
  }
  public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
    Handler(self, SeriesKey(label, dimensions))
  }
  public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
    Handler(self, SeriesKey(label, dimensions))
  }
  public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
    Handler(self, SeriesKey(label, dimensions))
  }
  public func destroyCounter(_ handler: any CounterHandler) {}
  public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
  public func destroyMeter(_ handler: any MeterHandler) {}
  public func destroyRecorder(_ handler: any RecorderHandler) {}
  public func destroyTimer(_ handler: any TimerHandler) {}

  /// One handler type for every kind of metric: it only forwards to the collector.
  final class Handler: CounterHandler, FloatingPointCounterHandler, MeterHandler, RecorderHandler, TimerHandler,
    @unchecked Sendable
  {
    let collector: MetricsCollector
    let key: SeriesKey
    init(_ collector: MetricsCollector, _ key: SeriesKey) {
      self.collector = collector
      self.key = key
    }
    func increment(by amount: Int64) { collector.add(key, Double(max(0, amount))) }
    func increment(by amount: Double) { collector.add(key, max(0, amount)) }
    /// A cumulative counter is never reset by one command.
    func reset() {}
    func set(_ value: Int64) { collector.set(key, Double(value)) }
    func set(_ value: Double) { collector.set(key, value) }
    func decrement(by amount: Double) { collector.lock.withLock { collector.state.gauges[key, default: 0] -= amount } }
    func record(_ value: Int64) { collector.set(key, Double(value)) }
    func record(_ value: Double) { collector.set(key, value) }
    func recordNanoseconds(_ duration: Int64) { collector.observe(key, nanoseconds: duration) }
  }
}

/// The metrics of one client (one command): recorded through the swift-metrics API into a
/// `MetricsCollector` of its own, added to `$TSUKU_HOME/metrics.state.*` when the command's
/// `Recorder` is flushed.
/// Nothing is written when nothing was recorded.
public final class ClientMetrics: @unchecked Sendable {
  public let collector = MetricsCollector()

  public init() {}

  private func count(_ m: MetricInfo, _ labels: [(String, String)], by n: Int = 1) {
    guard n > 0 else { return }
    Counter(label: m.name, dimensions: labels, factory: collector).increment(by: Int64(n))
  }

  /// A successful request to a source.
  func fetched(backend: String, op: String, nanoseconds: Int64, objects: Int, bytes: Int, document: Bool, at now: Date) {
    CoreMetrics.Timer(label: TsukuMetrics.fetchDuration.name, dimensions: [("backend", backend), ("op", op)], factory: collector)
      .recordNanoseconds(nanoseconds)
    let what = document ? "document" : "blob"
    count(TsukuMetrics.fetchedObjects, [("backend", backend), ("what", what)], by: objects)
    count(TsukuMetrics.fetchedBytes, [("backend", backend), ("what", what)], by: bytes)
    collector.remember(
      FetchRecord(backend: backend, op: op, seconds: Double(nanoseconds) / 1e9, bytes: bytes, time: Timestamp.format(now)))
  }

  /// A failed request to a source (or a source that could not be opened); `n` things it did
  /// not have.
  func fetchFailed(backend: String, _ error: Error, times n: Int = 1) {
    let cls = (error as? TsukuError)?.code.description ?? TsukuError.Code.other.description
    count(TsukuMetrics.fetchErrors, [("backend", backend), ("class", cls)], by: n)
  }

  func cacheHit(_ kind: BlobKind) { count(TsukuMetrics.cacheHits, [("kind", kind.rawValue)]) }
  func cacheMiss(_ kind: BlobKind) { count(TsukuMetrics.cacheMisses, [("kind", kind.rawValue)]) }

  /// Bytes that failed verification, from a source (its backend) or from the cache (`cache`).
  func verificationFailed(backend: String, _ error: TsukuError) {
    count(TsukuMetrics.verificationFailures, [("backend", backend), ("reason", TsukuMetrics.reason(of: error))])
  }

  func revocationRefused(_ kind: BlobKind) { count(TsukuMetrics.revocationRefusals, [("kind", kind.rawValue)]) }

  /// Adds what this client recorded to the home's cumulative state; never fails the command.
  public func flush(to home: Home) { try? add(to: home) }

  /// `flush(to:)`, failures thrown (the recorder warns about a refused state file).
  func add(to home: Home) throws {
    if collector.isEmpty { return }
    try home.addMetrics(collector.snapshot(reset: true))
  }
}
