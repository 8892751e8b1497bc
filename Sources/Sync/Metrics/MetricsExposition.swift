import Foundation
import Prometheus
import Store

extension MetricsState {
  /// The Prometheus text exposition of this state, rendered by swift-prometheus's
  /// `PrometheusCollectorRegistry`: families sorted by name, series by labels, one `# HELP`
  /// and `# TYPE` line per family. Histograms are rebuilt exactly: the bucket counts, the count
  /// and the sum (to the nanosecond) are those recorded.
  public func prometheusText() -> String {
    enum Series {
      case counter(Double)
      case gauge(Double)
      case histogram(HistogramData)
    }
    var families = [String: [(SeriesKey, Series)]]()
    for (k, v) in counters { families[k.name, default: []].append((k, .counter(v))) }
    for (k, v) in gauges { families[k.name, default: []].append((k, .gauge(v))) }
    for (k, h) in histograms { families[k.name, default: []].append((k, .histogram(h))) }
    var out = ""
    for name in families.keys.sorted() {
      let help = TsukuMetrics.byName[name]?.help ?? ""
      let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
      for (i, (key, series)) in families[name]!.sorted(by: { $0.0 < $1.0 }).enumerated() {
        // One registry per series keeps the output order stable (a registry's own order is
        // its dictionary's); the family's HELP and TYPE lines are kept from the first.
        let registry = PrometheusCollectorRegistry()
        switch series {
        case .counter(let v):
          let c = registry.makeCounter(descriptor: descriptor, labels: key.pairs)
          if v == v.rounded(), v < 9e15 { c.increment(by: Int64(v)) } else { c.increment(by: v) }
        case .gauge(let v):
          registry.makeGauge(descriptor: descriptor, labels: key.pairs).set(v)
        case .histogram(let h):
          let hist = registry.makeDurationHistogram(
            descriptor: descriptor, labels: key.pairs, buckets: h.bounds.map { Swift.Duration.nanoseconds($0) })
          for v in h.replay() { hist.record(Swift.Duration.nanoseconds(v)) }
        }
        let text = registry.emitToString()
        out += i == 0 ? text : text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0 + "\n" }.joined()
      }
    }
    return out
  }
}

extension HistogramData {
  /// Observations that reproduce this histogram exactly: each bucket's count, the count and
  /// the sum. Each starts at its bucket's upper bound (one past the last bound above it); the
  /// difference to the recorded sum is then taken off (or, above every bound, added) within
  /// each bucket's range.
  func replay() -> [Int64] {
    var values = [Int64]()
    values.reserveCapacity(count)
    let top = (bounds.last ?? 0) + 1
    var upper: Int64 = 0
    for (i, n) in counts.enumerated() where n > 0 {
      upper = upper.addingReportingOverflow(Int64(n).multipliedReportingOverflow(by: i < bounds.count ? bounds[i] : top).partialValue).partialValue
    }
    var excess = upper - sum  // to take off (negative: to add above the last bound)
    for (i, n) in counts.enumerated() where n > 0 {
      if i == bounds.count {
        var extra = excess < 0 ? -excess : 0
        for _ in 0..<n {
          values.append(top + extra)
          extra = 0
        }
        if excess < 0 { excess = 0 }
        continue
      }
      let hi = bounds[i]
      let lo: Int64 = i == 0 ? 0 : bounds[i - 1] + 1
      let room = hi - lo
      for _ in 0..<n {
        let cut = excess > 0 ? min(excess, room) : 0
        values.append(hi - cut)
        excess -= cut
      }
    }
    return values
  }
}
