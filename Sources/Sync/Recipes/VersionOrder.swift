/// Orders versions like `1.10.0` > `1.9.2` and `2025-12-02` > `2025-11-30`: numeric runs
/// compare as numbers, everything else as text.
public enum VersionOrder {
  public static func less(_ a: String, _ b: String) -> Bool {
    let pa = parts(a), pb = parts(b)
    for (x, y) in zip(pa, pb) where x != y {
      switch (Int(x), Int(y)) {
      case let (i?, j?): return i < j
      case (_?, nil): return false
      case (nil, _?): return true
      default: return x < y
      }
    }
    return pa.count < pb.count
  }

  private static func parts(_ v: String) -> [String] {
    v.split(whereSeparator: { $0 == "." || $0 == "-" || $0 == "+" || $0 == "_" }).map(String.init)
  }
}
