import Foundation

/// "Did you mean": the candidate nearest a mistyped word, by edit distance (insertions,
/// deletions, substitutions and swaps of two neighbouring characters count one each; the
/// optimal string alignment distance). Near means at most 1 edit for a word of up to 4
/// characters, at most 2 beyond, and fewer edits than the word has characters. The cost is
/// bounded: a candidate whose length differs by more than the allowed edits is skipped without
/// a comparison, a comparison stops as soon as a row exceeds the bound, and at most `limit`
/// candidates are looked at.
public enum Suggest {
  /// The nearest candidate (the first of equally near ones), or nil when none is near.
  public static func closest(to word: String, in candidates: some Sequence<String>, limit: Int = 1_000_000) -> String? {
    let w = Array(word.lowercased().utf8)
    let allowed = min(w.count <= 4 ? 1 : 2, max(w.count - 1, 0))
    guard allowed > 0 else { return nil }
    var best: (String, Int)?
    var seen = 0
    for c in candidates {
      seen += 1
      if seen > limit { break }
      let bound = best.map { $0.1 - 1 } ?? allowed
      guard bound >= 0 else { break }
      let b = Array(c.lowercased().utf8)
      if b == w || abs(b.count - w.count) > bound { continue }
      if let d = distance(w, b, max: bound) { best = (c, d) }
    }
    return best?.0
  }

  /// The optimal string alignment distance of `a` and `b`, or nil when it is over `max`.
  static func distance(_ a: [UInt8], _ b: [UInt8], max bound: Int) -> Int? {
    let (n, m) = (a.count, b.count)
    if abs(n - m) > bound { return nil }
    var prev2 = [Int](repeating: 0, count: m + 1)
    var prev = Array(0...m)
    var row = [Int](repeating: 0, count: m + 1)
    if n == 0 { return m <= bound ? m : nil }
    for i in 1...n {
      row[0] = i
      var smallest = row[0]
      for j in stride(from: 1, through: m, by: 1) {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        var v = Swift.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
        if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] { v = Swift.min(v, prev2[j - 2] + 1) }
        row[j] = v
        smallest = Swift.min(smallest, v)
      }
      if smallest > bound { return nil }
      (prev2, prev, row) = (prev, row, prev2)
    }
    return prev[m] <= bound ? prev[m] : nil
  }
}
