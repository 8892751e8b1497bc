import Foundation

/// The small parts of the S3 protocol the stores need: key and query encoding as SigV4 wants
/// them, and reading the XML of error and listing answers (by tag, without an XML library).
enum S3Protocol {
  /// SHA-256 of the empty body, hex: the `x-amz-content-sha256` of a request without one.
  static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

  /// Percent-encodes everything but the unreserved characters (`A-Za-z0-9-_.~`), as SigV4's
  /// canonical form does; `/` is kept when `keepSlash`.
  static func encode(_ s: String, keepSlash: Bool = false) -> String {
    var out = ""
    for b in s.utf8 {
      switch b {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
        UInt8(ascii: "~"):
        out.append(Character(Unicode.Scalar(b)))
      case UInt8(ascii: "/") where keepSlash: out.append("/")
      default: out += String(format: "%%%02X", b)
      }
    }
    return out
  }

  /// A query string in SigV4 canonical order: sorted by name, names and values encoded.
  /// libcurl 7.88 signs the query as it is sent, so it must be sent canonical.
  static func canonicalQuery(_ items: [(String, String)]) -> String {
    let encoded: [(String, String)] = items.map { (encode($0.0), encode($0.1)) }
    let sorted = encoded.sorted { a, b in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
    return sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
  }

  /// The text of every `<tag>...</tag>` in `xml`, entities decoded.
  static func values(_ tag: String, in xml: String) -> [String] {
    var out = [String]()
    let open = "<\(tag)>"
    let close = "</\(tag)>"
    var rest = xml[...]
    while let o = rest.range(of: open) {
      guard let c = rest.range(of: close, range: o.upperBound..<rest.endIndex) else { break }
      out.append(unescape(String(rest[o.upperBound..<c.lowerBound])))
      rest = rest[c.upperBound...]
    }
    return out
  }

  static func value(_ tag: String, in xml: String) -> String? { values(tag, in: xml).first }

  static func unescape(_ s: String) -> String {
    guard s.contains("&") else { return s }
    return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
      .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
      .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
      .replacingOccurrences(of: "&amp;", with: "&")
  }

  /// A listing's `LastModified` (`2026-01-18T02:00:00.000Z`; fractions and the `Z` optional),
  /// as a date; nil when it is not in that form.
  static func parseTime(_ text: String) -> Date? {
    let u = Array(text.utf8)
    func num(_ at: Int, _ n: Int) -> Int? {
      guard at + n <= u.count else { return nil }
      var v = 0
      for c in u[at..<at + n] {
        guard c >= 0x30 && c <= 0x39 else { return nil }
        v = v * 10 + Int(c - 0x30)
      }
      return v
    }
    guard u.count >= 19, u[4] == 0x2D, u[7] == 0x2D, u[10] == 0x54, u[13] == 0x3A, u[16] == 0x3A,
      let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
      let sec = num(17, 2), (1...12).contains(mo), (1...31).contains(d)
    else { return nil }
    var c = DateComponents()
    (c.year, c.month, c.day, c.hour, c.minute, c.second) = (y, mo, d, h, mi, sec)
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = TimeZone(identifier: "UTC")!
    var fraction = 0.0
    if u.count > 20, u[19] == 0x2E {
      var scale = 0.1
      for ch in u[20...] where ch >= 0x30 && ch <= 0x39 {
        fraction += Double(ch - 0x30) * scale
        scale /= 10
      }
    }
    return cal.date(from: c).map { $0.addingTimeInterval(fraction) }
  }

  /// The S3 error code of an error answer (`AccessDenied`, `NoSuchKey`, ...), if it has one.
  static func errorCode(_ response: HTTPResponse) -> String? {
    guard !response.body.isEmpty else { return nil }
    return value("Code", in: String(decoding: response.body.prefix(8192), as: UTF8.self))
  }
}
