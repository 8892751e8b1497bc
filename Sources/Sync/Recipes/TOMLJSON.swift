import Foundation

extension TOMLValue {
  /// The value as TOML would write it inline, for one-line reports: tables with sorted keys.
  public var inlineTOML: String {
    switch self {
    case .string(let s):
      var out = "\""
      for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
          if u.value < 0x20 || u.value == 0x7f {
            out += String(format: "\\u%04X", u.value)
          } else {
            out.unicodeScalars.append(u)
          }
        }
      }
      return out + "\""
    case .integer(let i): return String(i)
    case .float(let d): return d.isNaN ? "nan" : d.isInfinite ? (d < 0 ? "-inf" : "inf") : String(d)
    case .bool(let b): return b ? "true" : "false"
    case .datetime(let s): return s
    case .array(let a): return "[" + a.map(\.inlineTOML).joined(separator: ", ") + "]"
    case .table(let t):
      if t.isEmpty { return "{}" }
      return "{ " + t.keys.sorted().map { "\(TOMLValue.key($0)) = \(t[$0]!.inlineTOML)" }.joined(separator: ", ") + " }"
    }
  }

  private static func key(_ k: String) -> String {
    let bare = !k.isEmpty && k.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
    }
    return bare ? k : TOMLValue.string(k).inlineTOML
  }
}

/// A TOML value written as JSON (date-times as strings, non-finite floats as their TOML text).
public struct TOMLJSON: Encodable, Sendable {
  public let value: TOMLValue
  public init(_ value: TOMLValue) { self.value = value }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch value {
    case .string(let s), .datetime(let s): try c.encode(s)
    case .integer(let i): try c.encode(i)
    case .float(let d): if d.isFinite { try c.encode(d) } else { try c.encode(value.inlineTOML) }
    case .bool(let b): try c.encode(b)
    case .array(let a): try c.encode(a.map(TOMLJSON.init))
    case .table(let t): try c.encode(t.mapValues(TOMLJSON.init))
    }
  }
}
