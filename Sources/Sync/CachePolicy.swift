import Foundation
import Store

/// How long cached data may be used, and how much of it may be kept. tsuku's names:
/// `TSUKU_RECIPE_CACHE_TTL` (24h; 5m..7d), `TSUKU_RECIPE_CACHE_MAX_STALE` (7d),
/// `TSUKU_RECIPE_CACHE_SIZE_LIMIT` (500MB; 1MB..10GB).
public struct CachePolicy: Sendable, Equatable {
  /// After this long since a source last confirmed the cached index, a read asks the sources first.
  public var ttl: TimeInterval = 24 * 3600
  /// How long past the TTL a verified cached copy may still be served when every source fails.
  public var maxStale: TimeInterval = 7 * 86400
  /// The cache's size bound in bytes; least recently used blobs are evicted beyond it.
  public var sizeLimit: Int = 500 * 1024 * 1024

  public init() {}

  public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> CachePolicy {
    var p = CachePolicy()
    if let s = env["TSUKU_RECIPE_CACHE_TTL"], !s.isEmpty {
      guard let t = Duration.parse(s), t >= 300, t <= 7 * 86400 else {
        throw TsukuError(.usage, "invalid TSUKU_RECIPE_CACHE_TTL '\(s)': expected a duration from 5m to 7d, e.g. 24h")
      }
      p.ttl = t
    }
    if let s = env["TSUKU_RECIPE_CACHE_MAX_STALE"], !s.isEmpty {
      guard let t = Duration.parse(s), t >= 0, t <= 365 * 86400 else {
        throw TsukuError(.usage, "invalid TSUKU_RECIPE_CACHE_MAX_STALE '\(s)': expected a duration such as 7d (0 to 365d)")
      }
      p.maxStale = t
    }
    if let s = env["TSUKU_RECIPE_CACHE_SIZE_LIMIT"], !s.isEmpty {
      guard let n = ByteSize.parse(s), n >= 1 << 20, n <= 10 << 30 else {
        throw TsukuError(.usage, "invalid TSUKU_RECIPE_CACHE_SIZE_LIMIT '\(s)': expected a size from 1MB to 10GB, e.g. 500MB")
      }
      p.sizeLimit = n
    }
    return p
  }
}

/// Durations: `90` (seconds), `90s`, `15m`, `24h`, `7d`.
public enum Duration {
  public static func parse(_ s: String) -> TimeInterval? {
    let t = s.trimmingCharacters(in: .whitespaces).lowercased()
    if let n = Double(t) { return n }
    guard let unit = t.last, let n = Double(t.dropLast()), n >= 0 else { return nil }
    switch unit {
    case "s": return n
    case "m": return n * 60
    case "h": return n * 3600
    case "d": return n * 86400
    default: return nil
    }
  }

  /// `2 days`, `5 hours`, `3 minutes`, `40 seconds`.
  public static func describe(_ t: TimeInterval) -> String {
    func unit(_ n: Int, _ w: String) -> String { "\(n) \(w)\(n == 1 ? "" : "s")" }
    let s = Int(t.rounded(.down))
    if s >= 86400 { return unit(s / 86400, "day") }
    if s >= 3600 { return unit(s / 3600, "hour") }
    if s >= 60 { return unit(s / 60, "minute") }
    return unit(max(s, 0), "second")
  }
}

/// Sizes: `1048576`, `500MB`, `1GB`, `64KiB`.
public enum ByteSize {
  public static func parse(_ s: String) -> Int? {
    let t = s.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: "IB", with: "B")
    let units: [(String, Int)] = [("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (u, m) in units where t.hasSuffix(u) {
      guard let n = Double(t.dropLast(u.count).trimmingCharacters(in: .whitespaces)), n >= 0 else { return nil }
      return Int(n * Double(m))
    }
    return Int(t)
  }

  public static func describe(_ n: Int) -> String {
    if n >= 1 << 30 { return String(format: "%.1f GB", Double(n) / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.1f MB", Double(n) / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KB", Double(n) / Double(1 << 10)) }
    return "\(n) bytes"
  }
}
