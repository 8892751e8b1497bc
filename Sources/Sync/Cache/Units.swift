import Foundation
import Store

/// Durations: `90` (seconds), `90s`, `15m`, `24h`, `7d`.
public enum Duration {
  public static func parse(_ s: String) -> TimeInterval? {
    let t = s.trimmedASCII.lowercased()
    if let n = Double(t) { return n }
    // Also Go's compound form (`1h30m`, `500ms`), as the Go tsuku client reads the same
    // variables.
    guard let unit = t.last, let n = Double(t.dropLast()), n >= 0 else { return GoDuration.seconds(t) }
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

/// Sizes: `1048576`, `500MB`, `1GB`, `64KiB`; nil for anything else, a size past 2^62 bytes
/// included.
public enum ByteSize {
  public static func parse(_ s: String) -> Int? {
    let t = s.trimmedASCII.uppercased().replacingOccurrences(of: "IB", with: "B")
    let units: [(String, Int)] = [("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (u, m) in units where t.hasSuffix(u) {
      // Anything past what an Int holds is refused here, not trapped on.
      guard let n = Double(t.dropLast(u.count).trimmedASCII), n >= 0,
        n * Double(m) < 0x1p62
      else { return nil }
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
