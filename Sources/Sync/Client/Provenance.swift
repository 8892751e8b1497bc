import Foundation
import Store

/// Where a recipe came from and how fresh it is, for `tsuku info`.
public struct Provenance: Sendable, Equatable {
  /// The source that served the recipe (as configured, without any user info); `built-in` for
  /// the set compiled into the binary; nil when it is not cached and no source served it yet.
  public var source: String?
  /// Seconds since a source last confirmed the cached index; nil with no cached index.
  public var cacheAgeSeconds: Int?
  /// The median latency of the last fetches (at most `TsukuMetrics.recentFetches`), and how
  /// many there were; nil when none was recorded.
  public var medianFetchSeconds: Double?
  public var fetchesConsidered: Int
}

extension Client {
  /// Where `entry`'s recipe came from: the newest `fetch` of its hash in the audit log, else the
  /// source of the last sync (which served the index and the packs that held it).
  public func provenance(of entry: IndexEntry) -> Provenance {
    let meta = home.readCacheMeta()
    var source: String?
    if usingEmbedded {
      source = "built-in"
    } else if let e = audit.lastFetch(of: entry.recipe.sha256), let s = e.source {
      source = s
    } else if let m = meta, (try? cache.store.contains(entry.recipe.sha256)) == true {
      source = AuditLog.redact(m.source)
    }
    let age = meta.flatMap { Timestamp.parse($0.confirmed_at ?? $0.synced_at) }.map { max(0, Int(now.timeIntervalSince($0))) }
    // This command's own fetches count too: they are added to the file only when it ends.
    var state = (try? home.readMetrics()) ?? MetricsState()
    state.add(metrics.collector.snapshot())
    let median = state.medianFetchSeconds()
    return Provenance(
      source: source, cacheAgeSeconds: age, medianFetchSeconds: median?.seconds, fetchesConsidered: median?.fetches ?? 0)
  }
}

extension AuditLog {
  /// The newest `fetch` event of `id` in the current log and the one rotated before it (lines
  /// that do not name the hash are not decoded).
  public func lastFetch(of id: ObjectID) -> AuditEvent? {
    let hex = Data(id.hex.utf8)
    let dec = JSONDecoder()
    for f in [path, path + ".1"] {
      guard let data = FileManager.default.contents(atPath: f) else { continue }
      for line in data.split(separator: UInt8(ascii: "\n")).reversed() where line.range(of: hex) != nil {
        if let e = try? dec.decode(AuditEvent.self, from: Data(line)), e.event == "fetch", e.sha256 == id.hex { return e }
      }
    }
    return nil
  }
}
