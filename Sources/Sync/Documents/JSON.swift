import Foundation

#if canImport(Glibc)
  import Glibc
#endif
import Store

/// JSON helpers shared by every document: sorted keys, so the same document always has the
/// same bytes, and decoding that turns any failure into one line naming the document.
enum JSON {
  static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> Data {
    let e = JSONEncoder()
    e.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
    do { return try e.encode(value) } catch { fatalError("cannot encode \(T.self): \(error)") }
  }

  static func decode<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
    try decodeWithDecoder(type, data, what: what)
  }

  static func decodeWithDecoder<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
    do {
      return try JSONDecoder().decode(type, from: data)
    } catch let DecodingError.dataCorrupted(ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: \(Self.describe(ctx))")
    } catch let DecodingError.keyNotFound(key, ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: missing '\(Self.path(ctx.codingPath + [key]))'")
    } catch let DecodingError.typeMismatch(_, ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: wrong type at '\(Self.path(ctx.codingPath))'")
    } catch let DecodingError.valueNotFound(_, ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: null at '\(Self.path(ctx.codingPath))'")
    } catch {
      throw TsukuError(.integrity, "\(what) is not valid JSON")
    }
  }

  private static func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
  }

  private static func describe(_ ctx: DecodingError.Context) -> String {
    let p = path(ctx.codingPath)
    var d = ctx.debugDescription.split(separator: "\n").first.map(String.init) ?? "bad value"
    // The decoder's own wording names Swift types ("Cannot initialize DocumentType from
    // invalid String value ed25519"): say what was found instead.
    if let r = d.range(of: "from invalid String value ") {
      d = "unexpected value '\(d[r.upperBound...])'"
    } else if d.hasPrefix("The given data was not valid JSON") {
      d = "not JSON"
    } else if d.hasPrefix("Cannot initialize") || d.contains("Swift.") {
      d = "unexpected value"
    }
    return p.isEmpty ? d.lowercased() : "\(p): \(d)"
  }
}

/// Compact JSON written by hand for the lines every command appends (the audit log), byte for
/// byte what `JSON.encode` writes for the same value (sorted keys, `/` unescaped): JSONEncoder's
/// first use costs a command a tenth of a millisecond of runtime type lookups.
struct JSONLine {
  private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]
  private var first = true

  private mutating func key(_ k: StaticString) {
    if !first { bytes.append(UInt8(ascii: ",")) }
    first = false
    bytes.append(UInt8(ascii: "\""))
    bytes.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
    bytes += [UInt8(ascii: "\""), UInt8(ascii: ":")]
  }

  /// Fields must be added in sorted key order; nil values are left out.
  mutating func add(_ k: StaticString, _ v: String?) {
    guard let v else { return }
    key(k)
    Self.append(string: v, to: &bytes)
  }

  mutating func add(_ k: StaticString, _ v: Int?) {
    guard let v else { return }
    key(k)
    bytes.append(contentsOf: String(v).utf8)
  }

  mutating func add(_ k: StaticString, _ v: [String]?) {
    guard let v else { return }
    key(k)
    bytes.append(UInt8(ascii: "["))
    for (n, s) in v.enumerated() {
      if n > 0 { bytes.append(UInt8(ascii: ",")) }
      Self.append(string: s, to: &bytes)
    }
    bytes.append(UInt8(ascii: "]"))
  }

  /// The object closed, and a line break.
  var line: Data { Data(bytes + [UInt8(ascii: "}"), 0x0A]) }

  /// A JSON string as JSONEncoder writes it: `"` and `\` escaped, the short escapes for
  /// backspace, form feed, line feed, return and tab, `\u00XX` for other control bytes, the
  /// rest as UTF-8.
  static func append(string s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for c in s.utf8 {
      switch c {
      case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
      case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
      case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
      case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 15)]]
      default: out.append(c)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}

/// UTC timestamps as `2026-11-29T13:28:50Z`, the only form documents use. Parsed and printed
/// by hand: a Foundation date formatter costs about a millisecond to create on Linux.
public enum Timestamp {
  public static func format(_ date: Date) -> String {
    var t = time_t(date.timeIntervalSince1970.rounded(.down))
    var tm = tm()
    gmtime_r(&t, &tm)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
  }

  /// Parses exactly `YYYY-MM-DDTHH:MM:SSZ`; nil for anything else.
  public static func parse(_ text: String) -> Date? {
    let u = Array(text.utf8)
    guard u.count == 20, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"), u[10] == UInt8(ascii: "T"),
      u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":"), u[19] == UInt8(ascii: "Z")
    else { return nil }
    func num(_ a: Int, _ n: Int) -> Int32? {
      var v: Int32 = 0
      for i in a..<(a + n) {
        let c = u[i]
        guard c >= 0x30, c <= 0x39 else { return nil }
        v = v * 10 + Int32(c - 0x30)
      }
      return v
    }
    guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
      let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
    else { return nil }
    var tm = tm()
    tm.tm_year = y - 1900
    tm.tm_mon = mo - 1
    tm.tm_mday = d
    tm.tm_hour = h
    tm.tm_min = mi
    tm.tm_sec = s
    let t = timegm(&tm)
    // timegm normalises days such as February 30th; refuse them.
    var back = tm
    var tt = t
    gmtime_r(&tt, &back)
    guard back.tm_mday == d, back.tm_mon == mo - 1 else { return nil }
    return Date(timeIntervalSince1970: TimeInterval(t))
  }
}

extension Data {
  /// Decodes strict standard base64; nil for anything else.
  init?(strictBase64 text: String) {
    self.init(base64Encoded: text)
  }
}
