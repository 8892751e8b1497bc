import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// A metric name and its labels (sorted by label name): one series.
public struct SeriesKey: Hashable, Comparable, Sendable {
  public let name: String
  public let labels: [Label]

  public struct Label: Hashable, Sendable, Codable {
    public let name: String
    public let value: String
  }

  public init(_ name: String, _ labels: [(String, String)]) {
    self.name = name
    self.labels = labels.map { Label(name: $0.0, value: $0.1) }.sorted { $0.name < $1.name }
  }

  public var pairs: [(String, String)] { labels.map { ($0.name, $0.value) } }
  public var labelDictionary: [String: String] {
    Dictionary(labels.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
  }

  public static func < (a: SeriesKey, b: SeriesKey) -> Bool {
    if a.name != b.name { return a.name < b.name }
    for (x, y) in zip(a.labels, b.labels) where x != y {
      return x.name != y.name ? x.name < y.name : x.value < y.value
    }
    return a.labels.count < b.labels.count
  }
}

/// A histogram over nanoseconds: one count per bucket (`counts[i]` holds the observations in
/// `(bounds[i-1], bounds[i]]`, the last one those above every bound), their sum and count.
public struct HistogramData: Sendable, Equatable {
  public var bounds: [Int64]
  public var counts: [Int]
  public var sum: Int64 = 0
  public var count: Int = 0

  public init(bounds: [Int64]) {
    self.bounds = bounds
    counts = Array(repeating: 0, count: bounds.count + 1)
  }

  mutating func observe(_ nanoseconds: Int64) {
    let v = max(0, nanoseconds)
    let i = bounds.firstIndex { v <= $0 } ?? bounds.count
    counts[i] += 1
    sum = sum.addingReportingOverflow(v).overflow ? .max : sum + v
    count += 1
  }

  /// Adds another histogram; one with other bounds (an older build's) is re-bucketed by the
  /// upper bound of each of its buckets.
  mutating func add(_ o: HistogramData) {
    if o.bounds == bounds {
      for i in counts.indices { counts[i] += o.counts[i] }
    } else {
      for (i, n) in o.counts.enumerated() where n > 0 {
        let upper = i < o.bounds.count ? o.bounds[i] : Int64.max
        counts[bounds.firstIndex { upper <= $0 } ?? bounds.count] += n
      }
    }
    sum = sum.addingReportingOverflow(o.sum).overflow ? .max : sum + o.sum
    count += o.count
  }

  /// Bounds strictly increasing and positive, one count per bucket, counts adding up.
  var isValid: Bool {
    counts.count == bounds.count + 1 && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 } && (bounds.first ?? 1) > 0
      && counts.allSatisfy { $0 >= 0 } && counts.reduce(0, +) == count && sum >= 0
  }
}

/// Metrics: what one command recorded (`MetricsCollector`), or the cumulative state of a home
/// (`$TSUKU_HOME/metrics.state.0` and `.1`), which is the sum of every command's.
public struct MetricsState: Sendable, Equatable {
  public var counters: [SeriesKey: Double] = [:]
  public var gauges: [SeriesKey: Double] = [:]
  public var histograms: [SeriesKey: HistogramData] = [:]
  /// The last fetches, oldest first (at most `TsukuMetrics.recentFetches`).
  public var recent: [FetchRecord] = []
  /// When a command last added to this state.
  public var updatedAt: String?

  public init() {}

  public var isEmpty: Bool { counters.isEmpty && gauges.isEmpty && histograms.isEmpty && recent.isEmpty }

  /// Adds what a command recorded: counters and histograms add up, gauges take the new value,
  /// the ring of recent fetches keeps the newest.
  public mutating func add(_ d: MetricsState) {
    for (k, v) in d.counters { counters[k, default: 0] += v }
    for (k, v) in d.gauges { gauges[k] = v }
    for (k, h) in d.histograms {
      if var mine = histograms[k] {
        mine.add(h)
        histograms[k] = mine
      } else {
        histograms[k] = h
      }
    }
    recent = Array((recent + d.recent).suffix(TsukuMetrics.recentFetches))
    if let t = d.updatedAt { updatedAt = t }
  }

  /// The value of a counter (0 when it was never incremented).
  public func counter(_ name: String, _ labels: [String: String] = [:]) -> Double {
    counters[SeriesKey(name, labels.map { ($0.key, $0.value) })] ?? 0
  }

  /// The sum of a counter over every series whose labels include `matching`.
  public func total(_ name: String, matching: [String: String] = [:]) -> Double {
    counters.filter { k, _ in k.name == name && matching.allSatisfy { k.labelDictionary[$0.key] == $0.value } }
      .values.reduce(0, +)
  }

  /// The median latency of the last `n` fetches, in seconds, and how many there were.
  public func medianFetchSeconds(last n: Int = TsukuMetrics.recentFetches) -> (seconds: Double, fetches: Int)? {
    let xs = recent.suffix(n).map(\.seconds).sorted()
    if xs.isEmpty { return nil }
    let mid = xs.count / 2
    return (xs.count % 2 == 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2, xs.count)
  }
}

// MARK: JSON

extension MetricsState: Codable {
  struct Sample: Codable {
    var name: String
    var labels: [String: String]
    var value: Double
  }

  struct Histogram: Codable {
    var name: String
    var labels: [String: String]
    var bounds_ns: [Int64]
    var counts: [Int]
    var sum_ns: Int64
    var count: Int
  }

  enum Keys: String, CodingKey {
    case format, updated_at, counters, gauges, histograms, recent_fetches
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: Keys.self)
    func key(_ name: String, _ labels: [String: String]) -> SeriesKey { SeriesKey(name, labels.map { ($0.key, $0.value) }) }
    for s in try c.decodeIfPresent([Sample].self, forKey: .counters) ?? [] where s.value.isFinite && s.value >= 0 {
      counters[key(s.name, s.labels)] = s.value
    }
    for s in try c.decodeIfPresent([Sample].self, forKey: .gauges) ?? [] where s.value.isFinite {
      gauges[key(s.name, s.labels)] = s.value
    }
    for h in try c.decodeIfPresent([Histogram].self, forKey: .histograms) ?? [] {
      var d = HistogramData(bounds: h.bounds_ns)
      (d.counts, d.sum, d.count) = (h.counts, h.sum_ns, h.count)
      if d.isValid { histograms[key(h.name, h.labels)] = d }
    }
    recent = Array((try c.decodeIfPresent([FetchRecord].self, forKey: .recent_fetches) ?? []).suffix(TsukuMetrics.recentFetches))
    updatedAt = try c.decodeIfPresent(String.self, forKey: .updated_at)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: Keys.self)
    try c.encode(1, forKey: .format)
    try c.encodeIfPresent(updatedAt, forKey: .updated_at)
    try c.encode(counters.sorted { $0.key < $1.key }.map { Sample(name: $0.key.name, labels: $0.key.labelDictionary, value: $0.value) }, forKey: .counters)
    try c.encode(gauges.sorted { $0.key < $1.key }.map { Sample(name: $0.key.name, labels: $0.key.labelDictionary, value: $0.value) }, forKey: .gauges)
    try c.encode(
      histograms.sorted { $0.key < $1.key }.map {
        Histogram(
          name: $0.key.name, labels: $0.key.labelDictionary, bounds_ns: $0.value.bounds, counts: $0.value.counts,
          sum_ns: $0.value.sum, count: $0.value.count)
      }, forKey: .histograms)
    try c.encode(recent, forKey: .recent_fetches)
  }
}

// MARK: the state file

/// The state file: plain lines, read and written by hand (a JSON coder costs several times the
/// rest of a `tsuku show`). Fields are separated by one space; names, label names and values
/// are percent-encoded where they hold a space, `,`, `=`, `%` or a line break.
///
/// ```
/// tsuku-metrics 1
/// updated 2026-11-29T16:50:00Z
/// counter tsuku_cache_hits_total kind=recipe 211
/// gauge NAME LABELS VALUE
/// histogram tsuku_fetch_duration_seconds backend=file,op=blob BOUNDS_NS COUNTS SUM_NS COUNT
/// fetch file blob 0.000031 914 2026-11-29T16:43:12Z
/// ```
/// `LABELS` is `-` for none; `BOUNDS_NS` and `COUNTS` are comma-separated (one count per bound
/// and one above them all, not cumulative).
extension MetricsState {
  static let header = "tsuku-metrics 1"

  public func stateText() -> String {
    func esc(_ s: String) -> String {
      guard s.utf8.contains(where: { $0 == 0x20 || $0 == 0x2C || $0 == 0x3D || $0 == 0x25 || $0 == 0x0A || $0 == 0x0D })
        || s.isEmpty
      else { return s }
      if s.isEmpty { return "%" }
      let digits = Array("0123456789ABCDEF".utf8)
      var o = [UInt8]()
      for b in s.utf8 {
        if b == 0x20 || b == 0x2C || b == 0x3D || b == 0x25 || b == 0x0A || b == 0x0D {
          o += [0x25, digits[Int(b >> 4)], digits[Int(b & 15)]]
        } else {
          o.append(b)
        }
      }
      return String(decoding: o, as: UTF8.self)
    }
    func num(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
    func labels(_ k: SeriesKey) -> String {
      k.labels.isEmpty ? "-" : k.labels.map { esc($0.name) + "=" + esc($0.value) }.joined(separator: ",")
    }
    var out = Self.header + "\n"
    if let updatedAt { out += "updated \(updatedAt)\n" }
    for (k, v) in counters.sorted(by: { $0.key < $1.key }) { out += "counter \(esc(k.name)) \(labels(k)) \(num(v))\n" }
    for (k, v) in gauges.sorted(by: { $0.key < $1.key }) { out += "gauge \(esc(k.name)) \(labels(k)) \(num(v))\n" }
    for (k, h) in histograms.sorted(by: { $0.key < $1.key }) {
      let b = h.bounds.map(String.init).joined(separator: ",")
      let c = h.counts.map(String.init).joined(separator: ",")
      out += "histogram \(esc(k.name)) \(labels(k)) \(b.isEmpty ? "-" : b) \(c) \(h.sum) \(h.count)\n"
    }
    for f in recent { out += "fetch \(esc(f.backend)) \(esc(f.op)) \(f.seconds) \(f.bytes) \(esc(f.time))\n" }
    return out
  }

  /// Reads the state file; throws on anything it does not understand. A histogram whose counts
  /// do not add up is left out. Bytes, not Characters: this runs on every `show`.
  public init(stateText data: Data) throws {
    self.init()
    typealias Bytes = ArraySlice<UInt8>
    func bad(_ n: Int, _ why: String) -> TsukuError { TsukuError(.other, "line \(n): \(why)") }
    func str(_ b: Bytes) -> String { String(decoding: b, as: UTF8.self) }
    func hex(_ c: UInt8) -> UInt8? {
      switch c {
      case 0x30...0x39: c - 0x30
      case 0x41...0x46: c - 0x41 + 10
      case 0x61...0x66: c - 0x61 + 10
      default: nil
      }
    }
    func unesc(_ b: Bytes, _ n: Int) throws -> String {
      guard b.contains(0x25) else { return str(b) }
      if b.count == 1 { return "" }
      var out = [UInt8]()
      var i = b.startIndex
      while i < b.endIndex {
        if b[i] == 0x25 {
          guard i + 2 < b.endIndex, let h = hex(b[i + 1]), let l = hex(b[i + 2]) else { throw bad(n, "a bad escape") }
          out.append(h << 4 | l)
          i += 3
        } else {
          out.append(b[i])
          i += 1
        }
      }
      return str(out[...])
    }
    func int(_ b: Bytes, _ n: Int) throws -> Int64 {
      var v: Int64 = 0
      var neg = false
      var i = b.startIndex
      if i < b.endIndex, b[i] == 0x2D {
        neg = true
        i += 1
      }
      guard i < b.endIndex, b.endIndex - i <= 18 else { throw bad(n, "'\(str(b))' is not a whole number") }
      while i < b.endIndex {
        guard (0x30...0x39).contains(b[i]) else { throw bad(n, "'\(str(b))' is not a whole number") }
        v = v * 10 + Int64(b[i] - 0x30)
        i += 1
      }
      return neg ? -v : v
    }
    func ints(_ b: Bytes, _ n: Int) throws -> [Int64] {
      if b.elementsEqual([0x2D]) { return [] }
      return try b.split(separator: 0x2C, omittingEmptySubsequences: false).map { try int($0, n) }
    }
    func double(_ b: Bytes, _ n: Int) throws -> Double {
      guard let v = Double(str(b)), v.isFinite else { throw bad(n, "'\(str(b))' is not a number") }
      return v
    }
    func key(_ name: Bytes, _ labels: Bytes, _ n: Int) throws -> SeriesKey {
      var pairs = [(String, String)]()
      if !labels.elementsEqual([0x2D]) {
        for p in labels.split(separator: 0x2C, omittingEmptySubsequences: false) {
          guard let eq = p.firstIndex(of: 0x3D) else { throw bad(n, "a label without '='") }
          pairs.append((try unesc(p[..<eq], n), try unesc(p[(eq + 1)...], n)))
        }
      }
      return SeriesKey(try unesc(name, n), pairs)
    }
    let bytes = [UInt8](data)
    let lines = bytes.split(separator: 0x0A)
    guard let first = lines.first, first.elementsEqual(Self.header.utf8) else {
      throw TsukuError(.other, "the first line is not '\(Self.header)'")
    }
    for (i, line) in lines.dropFirst().enumerated() {
      let n = i + 2
      let f = line.split(separator: 0x20, omittingEmptySubsequences: false)
      switch (str(f[0]), f.count) {
      case ("updated", 2): updatedAt = str(f[1])
      case ("counter", 4):
        let v = try double(f[3], n)
        guard v >= 0 else { throw bad(n, "a negative counter") }
        counters[try key(f[1], f[2], n)] = v
      case ("gauge", 4): gauges[try key(f[1], f[2], n)] = try double(f[3], n)
      case ("histogram", 7):
        var h = HistogramData(bounds: try ints(f[3], n))
        h.counts = try ints(f[4], n).map { Int($0) }
        (h.sum, h.count) = (try int(f[5], n), Int(try int(f[6], n)))
        if h.isValid { histograms[try key(f[1], f[2], n)] = h }
      case ("fetch", 6):
        recent.append(
          FetchRecord(
            backend: try unesc(f[1], n), op: try unesc(f[2], n), seconds: try double(f[3], n), bytes: Int(try int(f[4], n)),
            time: try unesc(f[5], n)))
      default:
        throw bad(n, "'\(str(line.prefix(40)))' is not understood")
      }
    }
    recent = Array(recent.suffix(TsukuMetrics.recentFetches))
  }
}

// MARK: the home's cumulative state

/// The cumulative state is kept in two slot files, `metrics.state.0` and `metrics.state.1`,
/// each a header line (`tsuku-metrics-slot GENERATION BYTES SHA256`) and the state text. A
/// command overwrites the older slot in place with the next generation; readers take the newest
/// slot whose length and hash match. So a reader never sees half a state and a crash in the
/// middle of a write loses at most that command's counts, while the hot path makes neither a
/// rename nor an fsync: on ext4 a rename over an existing file under I/O load took 3 ms at the
/// 90th percentile and up to 100 ms, an overwrite in place 0.01 ms.
extension Home {
  /// The two slot files of the cumulative metrics.
  public var metricsPaths: [String] { [path + "/metrics.state.0", path + "/metrics.state.1"] }

  /// The cumulative metrics (empty when none were recorded yet).
  public func readMetrics() throws -> MetricsState {
    try withMetricsLock(LOCK_SH, create: false) { try newestMetrics().state }
  }

  /// Adds a command's metrics to the cumulative state, under `$TSUKU_HOME/metrics.lock` (a lock
  /// of its own, not the home's: a `show` never waits for a long sync). A home that does not
  /// exist yet is not created for it; a state that cannot be read is started afresh
  /// (Prometheus reads that as a counter reset).
  public func addMetrics(_ delta: MetricsState, now: Date = Date()) throws {
    if delta.isEmpty { return }
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
    try withMetricsLock(LOCK_EX, create: true) {
      let current = try? newestMetrics()
      var state = current?.state ?? MetricsState()
      state.add(delta)
      state.updatedAt = Timestamp.format(now)
      try writeMetricsSlot(state, after: current)
    }
  }

  /// Replaces the cumulative metrics with `state` (a new generation).
  public func writeMetrics(_ state: MetricsState) throws {
    try makeDirectory(path)
    try withMetricsLock(LOCK_EX, create: true) { try writeMetricsSlot(state, after: try? newestMetrics()) }
  }

  private func withMetricsLock<T>(_ op: Int32, create: Bool, _ body: () throws -> T) throws -> T {
    let lockPath = path + "/metrics.lock"
    // Never through a symbolic link, only a regular file (`FileIO`). Nothing to lock: no
    // home, or a home that cannot be written (a reader then reads as is).
    let fd: Int32
    if create {
      fd = try FileIO.open(lockPath, O_RDWR | O_CREAT, failing: "cannot lock")
    } else {
      fd = FileIO.openRaw(lockPath, O_RDONLY)
      if fd < 0 { return try body() }
    }
    defer { close(fd) }
    let e = FileIO.lockRaw(fd, op)
    if e != 0 { throw TsukuError.io("cannot lock", lockPath, errno: e) }
    defer { flock(fd, LOCK_UN) }
    return try body()
  }

  /// The newest slot that is whole, its generation and which slot it is; an empty state (slot
  /// nil) when neither file exists.
  private func newestMetrics() throws -> (state: MetricsState, generation: Int, slot: Int?) {
    var best: (generation: Int, slot: Int, body: ArraySlice<UInt8>)?
    var problems = [String]()
    for (i, p) in metricsPaths.enumerated() {
      let data: Data
      do {
        guard let d = try FileIO.readFileIfPresent(p) else { continue }
        data = d
      } catch let e as TsukuError {
        problems.append(e.message)
        continue
      }
      let bytes = [UInt8](data)
      guard let nl = bytes.firstIndex(of: 0x0A) else {
        problems.append("'\(p)' has no header line")
        continue
      }
      let f = bytes[..<nl].split(separator: 0x20).map { String(decoding: $0, as: UTF8.self) }
      let body = bytes[(nl + 1)...]
      guard f.count == 4, f[0] == "tsuku-metrics-slot", let gen = Int(f[1]), let len = Int(f[2]), len == body.count,
        SHA256.hash(Data(body)).hex == f[3]
      else {
        problems.append("'\(p)' is not whole (a write was cut short, or it was edited)")
        continue
      }
      if gen > best?.generation ?? -1 { best = (gen, i, body) }
    }
    guard let best else {
      if problems.isEmpty { return (MetricsState(), 0, nil) }
      throw TsukuError(.other, "no valid metrics state: " + problems.joined(separator: "; "))
    }
    do {
      return (try MetricsState(stateText: Data(best.body)), best.generation, best.slot)
    } catch let e as TsukuError {
      throw TsukuError(.other, "'\(metricsPaths[best.slot])' is not a valid metrics state file: \(e.message)")
    }
  }

  /// Overwrites the slot that is not the newest, in place (no rename, no fsync).
  private func writeMetricsSlot(_ state: MetricsState, after current: (state: MetricsState, generation: Int, slot: Int?)?) throws {
    let slot = current?.slot.map { 1 - $0 } ?? 0
    let body = Data(state.stateText().utf8)
    let text = Data("tsuku-metrics-slot \((current?.generation ?? 0) + 1) \(body.count) \(SHA256.hash(body).hex)\n".utf8) + body
    let p = metricsPaths[slot]
    // Overwritten in place: never through a symbolic link, only a regular file (`FileIO`).
    let fd = try FileIO.open(p, O_WRONLY | O_CREAT, failing: "cannot write")
    defer { close(fd) }
    let e = text.withUnsafeBytes { FileIO.writeRaw(fd, $0, at: 0) }
    let ok = e == 0 && ftruncate(fd, off_t(text.count)) == 0
    if !ok { throw TsukuError.io("cannot write", p, errno: e != 0 ? e : errno) }
  }
}
