import Foundation
import Store

/// How long cached data may be used, and how much of it may be kept. tsuku's names:
/// `TSUKU_RECIPE_CACHE_TTL` (24h; 5m..7d), `TSUKU_RECIPE_CACHE_MAX_STALE` (7d),
/// `TSUKU_RECIPE_CACHE_SIZE_LIMIT` (500MB; 1MB..10GB), `TSUKU_RECIPE_NEGATIVE_TTL` (5m; 0..24h),
/// `TSUKU_REVOCATION_TTL` (1h; 1m..24h), `TSUKU_REVOCATION_DEADLINE` (2s; 0.1s..60s).
public struct CachePolicy: Sendable, Equatable {
  /// After this long since a source last confirmed the cached index, a read asks the sources first.
  public var ttl: TimeInterval = 24 * 3600
  /// How long past the TTL a verified cached copy may still be served when every source fails.
  public var maxStale: TimeInterval = 7 * 86400
  /// The cache's size bound in bytes; least recently used blobs are evicted beyond it.
  public var sizeLimit: Int = 500 * 1024 * 1024
  /// A name the cached index lacks, asked for longer than this after a source last confirmed
  /// that index, makes one conditional read of `index.json` before the answer is "not found".
  public var negativeTTL: TimeInterval = 300
  /// The time limit of that read (never more than `TSUKU_API_TIMEOUT`).
  public static let missCheckTimeout: Double = 2
  /// After this long since a source last confirmed the cached index, a read first asks one
  /// source, conditionally, whether the index (and so its revocation list) moved on: a
  /// revocation reaches a client within this bound, whatever the recipe TTL.
  public var revocationTTL: TimeInterval = 3600
  /// The time limit of that request (never more than `TSUKU_API_TIMEOUT`).
  public var revocationDeadline: TimeInterval = 2

  public init() {}

  public static func fromEnvironment(_ env: [String: String] = ProcessEnvironment.current) throws -> CachePolicy {
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
    if let s = env["TSUKU_RECIPE_NEGATIVE_TTL"], !s.isEmpty {
      guard let t = Duration.parse(s), t >= 0, t <= 86400 else {
        throw TsukuError(.usage, "invalid TSUKU_RECIPE_NEGATIVE_TTL '\(s)': expected a duration from 0 to 24h, e.g. 5m")
      }
      p.negativeTTL = t
    }
    if let s = env["TSUKU_REVOCATION_TTL"], !s.isEmpty {
      guard let t = Duration.parse(s), t >= 60, t <= 86400 else {
        throw TsukuError(.usage, "invalid TSUKU_REVOCATION_TTL '\(s)': expected a duration from 1m to 24h, e.g. 1h")
      }
      p.revocationTTL = t
    }
    if let s = env["TSUKU_REVOCATION_DEADLINE"], !s.isEmpty {
      guard let t = Duration.parse(s), t >= 0.1, t <= 60 else {
        throw TsukuError(.usage, "invalid TSUKU_REVOCATION_DEADLINE '\(s)': expected a duration from 0.1s to 60s, e.g. 2s")
      }
      p.revocationDeadline = t
    }
    return p
  }
}
