import Foundation

/// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: it
/// accepts only what the format allows and checks what a scraper relies on.
///
/// - `# HELP name text` and `# TYPE name type` at most once per family, before its samples;
///   no other comment lines, no blank lines, every line ends with a newline.
/// - Sample lines `name{label="value",...} value` (no timestamps): valid metric and label
///   names, quoted values with only `\\`, `\"` and `\n` escapes, no label twice, a number as
///   the value, no series twice.
/// - A family's samples are contiguous and named for its type: a counter's `name` (finite,
///   not negative), a histogram's `name_bucket`, `name_sum`, `name_count`.
/// - Per histogram series: an `le` label on every bucket, bounds strictly increasing and
///   ending at `+Inf`, cumulative counts never decreasing, `+Inf` equal to `_count`, a `_sum`.
public struct PrometheusText: Sendable {
  public struct Sample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
  }

  public struct Family: Sendable {
    public var name: String
    public var type: String
    public var help: String?
    public var samples: [Sample]
  }

  public struct Invalid: Error, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
  }

  public private(set) var families: [String: Family] = [:]
  /// Family names in the order they appeared.
  public private(set) var order: [String] = []

  public init(_ text: String) throws {
    if text.isEmpty { return }
    guard text.hasSuffix("\n") else { throw Invalid(line: 0, message: "the text does not end with a newline") }
    var current: String?  // the family whose samples are being read
    var closed = Set<String>()  // families whose samples ended
    var seen = Set<String>()  // series already given
    var pendingHelp = [String: String]()
    var pendingType = [String: String]()
    let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
    for (i, raw) in lines.enumerated() {
      let n = i + 1
      let line = String(raw)
      func fail(_ m: String) -> Invalid { Invalid(line: n, message: "\(m): '\(line)'") }
      if line.isEmpty { throw fail("blank line") }
      if line.hasPrefix("#") {
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else {
          throw fail("a comment that is neither HELP nor TYPE")
        }
        let name = parts[2]
        guard Self.isMetricName(name) else { throw fail("invalid metric name") }
        if families[name] != nil || closed.contains(name) { throw fail("HELP or TYPE after the family's samples") }
        if parts[1] == "HELP" {
          if pendingHelp[name] != nil { throw fail("a second HELP") }
          pendingHelp[name] = parts.count > 3 ? parts[3] : ""
        } else {
          guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
            throw fail("invalid TYPE")
          }
          if pendingType[name] != nil { throw fail("a second TYPE") }
          pendingType[name] = parts[3]
        }
        continue
      }
      let s = try Self.sample(line, n)
      let key = s.name + "{" + s.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
      if !seen.insert(key).inserted { throw fail("the same series twice") }
      // Which family: a histogram's suffixed names belong to it.
      var family = s.name
      for suffix in ["_bucket", "_sum", "_count"] where s.name.hasSuffix(suffix) {
        let base = String(s.name.dropLast(suffix.count))
        if pendingType[base] == "histogram" || pendingType[base] == "summary" || families[base].map({ $0.type == "histogram" || $0.type == "summary" }) == true {
          family = base
        }
      }
      if current != family {
        if let c = current { closed.insert(c) }
        if closed.contains(family) { throw fail("samples of '\(family)' are not contiguous") }
        current = family
        families[family] = Family(name: family, type: pendingType[family] ?? "untyped", help: pendingHelp[family], samples: [])
        order.append(family)
      }
      let type = families[family]!.type
      switch type {
      case "histogram":
        guard s.name != family else { throw fail("a histogram sample without _bucket, _sum or _count") }
        if s.name == family + "_bucket" {
          guard let le = s.labels["le"], Self.number(le) != nil else { throw fail("a bucket without a numeric le") }
        } else if s.labels["le"] != nil {
          throw fail("le on a sample that is not a bucket")
        }
        if s.name == family + "_count", s.value < 0 || s.value != s.value.rounded() { throw fail("a count that is not a whole number") }
      case "counter":
        guard s.name == family else { throw fail("a counter sample named otherwise than its family") }
        guard s.value.isFinite, s.value >= 0 else { throw fail("a counter that is negative or not finite") }
      default:
        guard s.name == family else { throw fail("a sample named otherwise than its family") }
      }
      families[family]!.samples.append(s)
    }
    for f in families.values where f.type == "histogram" { try Self.checkHistogram(f) }
  }

  // MARK: reading values

  /// The value of the one sample with exactly these labels.
  public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
    for f in families.values { for s in f.samples where s.name == name && s.labels == labels { return s.value } }
    return nil
  }

  /// The sum over every sample of `name` whose labels include `matching`.
  public func sum(_ name: String, matching: [String: String] = [:]) -> Double {
    var t = 0.0
    for f in families.values {
      for s in f.samples where s.name == name && matching.allSatisfy({ s.labels[$0.key] == $0.value }) { t += s.value }
    }
    return t
  }

  /// Every label value that appears, by label name.
  public var labelValues: [String: Set<String>] {
    var out = [String: Set<String>]()
    for f in families.values { for s in f.samples { for (k, v) in s.labels { out[k, default: []].insert(v) } } }
    return out
  }

  // MARK: parsing

  static func isMetricName(_ s: String) -> Bool {
    guard let f = s.unicodeScalars.first, f.isASCIILetter || f == "_" || f == ":" else { return false }
    return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
  }

  static func isLabelName(_ s: String) -> Bool {
    guard let f = s.unicodeScalars.first, f.isASCIILetter || f == "_" else { return false }
    return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
  }

  static func number(_ s: String) -> Double? {
    switch s {
    case "+Inf": return .infinity
    case "-Inf": return -.infinity
    case "NaN": return .nan
    default:
      guard !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
      return Double(s)
    }
  }

  static func sample(_ line: String, _ n: Int) throws -> Sample {
    func fail(_ m: String) -> Invalid { Invalid(line: n, message: "\(m): '\(line)'") }
    let chars = Array(line.unicodeScalars)
    var i = 0
    var name = ""
    while i < chars.count, chars[i] != "{", chars[i] != " " {
      name.unicodeScalars.append(chars[i])
      i += 1
    }
    guard isMetricName(name) else { throw fail("invalid metric name") }
    var labels = [String: String]()
    if i < chars.count, chars[i] == "{" {
      i += 1
      while true {
        guard i < chars.count else { throw fail("unterminated labels") }
        if chars[i] == "}" {
          i += 1
          break
        }
        var label = ""
        while i < chars.count, chars[i] != "=" {
          label.unicodeScalars.append(chars[i])
          i += 1
        }
        guard isLabelName(label) else { throw fail("invalid label name '\(label)'") }
        guard i + 1 < chars.count, chars[i] == "=", chars[i + 1] == "\"" else { throw fail("a label value that is not quoted") }
        i += 2
        var value = ""
        while true {
          guard i < chars.count else { throw fail("unterminated label value") }
          let c = chars[i]
          if c == "\"" {
            i += 1
            break
          }
          if c == "\\" {
            guard i + 1 < chars.count else { throw fail("a dangling escape") }
            switch chars[i + 1] {
            case "\\": value += "\\"
            case "\"": value += "\""
            case "n": value += "\n"
            default: throw fail("an invalid escape")
            }
            i += 2
            continue
          }
          value.unicodeScalars.append(c)
          i += 1
        }
        if labels[label] != nil { throw fail("label '\(label)' twice") }
        labels[label] = value
        guard i < chars.count else { throw fail("unterminated labels") }
        if chars[i] == "," {
          i += 1
        } else if chars[i] != "}" {
          throw fail("expected ',' or '}' after a label")
        }
      }
    }
    guard i < chars.count, chars[i] == " " else { throw fail("no space before the value") }
    let rest = String(String.UnicodeScalarView(chars[(i + 1)...]))
    guard !rest.contains(" ") else { throw fail("a timestamp or extra field") }
    guard let v = number(rest) else { throw fail("'\(rest)' is not a number") }
    return Sample(name: name, labels: labels, value: v)
  }

  static func checkHistogram(_ f: Family) throws {
    func fail(_ m: String) -> Invalid { Invalid(line: 0, message: "histogram '\(f.name)': \(m)") }
    var series = [[String: String]: [(Double, Double)]]()
    var order = [[String: String]]()
    var sums = [[String: String]: Double]()
    var counts = [[String: String]: Double]()
    for s in f.samples {
      var key = s.labels
      key["le"] = nil
      if s.name == f.name + "_bucket" {
        if series[key] == nil { order.append(key) }
        series[key, default: []].append((number(s.labels["le"]!)!, s.value))
      } else if s.name == f.name + "_sum" {
        sums[key] = s.value
      } else if s.name == f.name + "_count" {
        counts[key] = s.value
      } else {
        throw fail("unexpected sample '\(s.name)'")
      }
    }
    guard Set(series.keys) == Set(sums.keys), Set(series.keys) == Set(counts.keys) else {
      throw fail("every series needs buckets, _sum and _count")
    }
    for key in order {
      let buckets = series[key]!
      for (a, b) in zip(buckets, buckets.dropFirst()) {
        guard a.0 < b.0 else { throw fail("le \(a.0) then \(b.0): not increasing in \(key)") }
        guard a.1 <= b.1 else { throw fail("bucket counts decrease (\(a.1) then \(b.1)) in \(key)") }
      }
      guard buckets.last?.0 == .infinity else { throw fail("no +Inf bucket in \(key)") }
      guard buckets.last?.1 == counts[key] else { throw fail("+Inf bucket \(buckets.last!.1) is not _count \(counts[key]!) in \(key)") }
      guard sums[key]!.isFinite else { throw fail("_sum is not finite in \(key)") }
    }
  }
}

extension Unicode.Scalar {
  fileprivate var isASCIILetter: Bool { (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) }
  fileprivate var isASCIIDigit: Bool { (0x30...0x39).contains(value) }
}
