import Foundation
import Store

/// Sets a field once: false for a value that did not read or a field seen before.
func once<T>(_ slot: inout T?, _ value: T?) -> Bool {
  guard slot == nil, let value else { return false }
  slot = value
  return true
}

/// A strict one-pass reader of JSON, for the documents every command reads (root, trust
/// state, index.json and its sections, the tree, subtrees, shards, the revocation list, the
/// cache's record). Values are checked to be well-formed as they are read; the fields a
/// document keeps are built, the others skipped. Every reader returns nil for anything it does
/// not take (malformed JSON, a missing or repeated field, a number that is not a plain
/// integer, a hash that is not 64 lowercase hex digits), and the caller then gives the bytes
/// to Foundation's JSONDecoder, which either reads them the same way or gives the exact
/// message. It never takes a document the decoder would refuse (`JSONScanTests` and the
/// `scan` fuzz target compare the two).
///
/// Why not only JSONDecoder: a command starts once per use, and decoding through Codable
/// makes the Swift runtime look up generic types and protocol conformances by name on first
/// use of each, which was a fifth of `tsuku show` (docs/architecture.md, "Start-up").
struct JSONScan {
  let b: UnsafeRawBufferPointer
  var i = 0
  init(_ b: UnsafeRawBufferPointer) { self.b = b }

  static let q = UInt8(ascii: "\""), bs = UInt8(ascii: "\\")

  /// Reads a whole document with `body`: nil unless it reads and only whitespace follows.
  static func read<T>(_ data: Data, _ body: (inout JSONScan) -> T?) -> T? {
    data.withUnsafeBytes { raw in
      var r = JSONScan(raw)
      guard let v = body(&r) else { return nil }
      r.ws()
      return r.i == r.b.count ? v : nil
    }
  }

  mutating func ws() {
    while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
  }

  mutating func take(_ c: UInt8) -> Bool {
    ws()
    guard i < b.count, b[i] == c else { return false }
    i += 1
    return true
  }

  /// `{ "key": value, ... }`: `field` reads (or skips) each value; keys with an escape are
  /// not taken.
  mutating func object(_ field: (inout JSONScan, String) -> Bool) -> Bool {
    guard take(UInt8(ascii: "{")) else { return false }
    if take(UInt8(ascii: "}")) { return true }
    repeat {
      ws()
      guard i < b.count, b[i] == Self.q else { return false }
      let start = i + 1
      var j = start
      while j < b.count, b[j] != Self.q {
        if b[j] == Self.bs || b[j] < 0x20 { return false }
        j += 1
      }
      guard j < b.count else { return false }
      guard let key = String(validating: UnsafeRawBufferPointer(rebasing: b[start..<j]), as: UTF8.self) else {
        return false
      }
      i = j + 1
      guard take(UInt8(ascii: ":")), field(&self, key) else { return false }
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "}"))
  }

  mutating func array<T>(_ element: (inout JSONScan) -> T?) -> [T]? {
    guard take(UInt8(ascii: "[")) else { return nil }
    var out = [T]()
    if take(UInt8(ascii: "]")) { return out }
    repeat {
      guard let e = element(&self) else { return nil }
      out.append(e)
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "]")) ? out : nil
  }

  /// A string without escapes, as valid UTF-8; one with escapes is not taken here.
  mutating func string() -> String? {
    guard take(Self.q) else { return nil }
    let start = i
    while i < b.count, b[i] != Self.q {
      if b[i] == Self.bs || b[i] < 0x20 { return nil }
      i += 1
    }
    guard i < b.count else { return nil }
    let s = String(validating: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    i += 1
    return s
  }

  mutating func objectID() -> ObjectID? {
    guard take(Self.q), i + 65 <= b.count, b[i + 64] == Self.q else { return nil }
    let hex = UnsafeRawBufferPointer(rebasing: b[i..<(i + 64)])
    // Lowercase only, as every document writes them.
    guard !hex.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F") }) else { return nil }
    guard let id = ObjectID(hexUTF8: hex) else { return nil }
    i += 65
    return id
  }

  /// A plain integer (`-?(0|[1-9][0-9]*)`, at most 18 digits).
  mutating func int() -> Int? {
    ws()
    var neg = false
    if i < b.count, b[i] == UInt8(ascii: "-") {
      neg = true
      i += 1
    }
    return digits(max: 18).map { neg ? -Int($0) : Int($0) }
  }

  /// `0|[1-9][0-9]*` of at most `max` digits, with no fraction, exponent or further digit after
  /// it: nil for anything else.
  private mutating func digits(max: Int) -> UInt64? {
    let start = i
    var v: UInt64 = 0
    while i < b.count, b[i] >= 0x30, b[i] <= 0x39, i - start < max {
      v = v * 10 + UInt64(b[i] - 0x30)
      i += 1
    }
    let n = i - start
    guard n > 0, !(n > 1 && b[start] == 0x30) else { return nil }
    if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")
      || (b[i] >= 0x30 && b[i] <= 0x39)
    {
      return nil
    }
    return v
  }

  /// Any JSON value, checked and not built (nesting bounded).
  mutating func skip(depth: Int = 0) -> Bool {
    guard depth < 64 else { return false }
    ws()
    guard i < b.count else { return false }
    switch b[i] {
    case UInt8(ascii: "{"):
      return object { r, _ in r.skip(depth: depth + 1) }
    case UInt8(ascii: "["):
      return array { r in r.skip(depth: depth + 1) ? true : nil } != nil
    case Self.q:
      return skipString()
    case UInt8(ascii: "t"): return literal("true")
    case UInt8(ascii: "f"): return literal("false")
    case UInt8(ascii: "n"): return literal("null")
    default: return number()
    }
  }

  mutating func literal(_ word: StaticString) -> Bool {
    let n = word.utf8CodeUnitCount
    guard i + n <= b.count, memcmp(b.baseAddress! + i, word.utf8Start, n) == 0 else { return false }
    i += n
    return true
  }

  /// A string with any valid escapes, its bytes valid UTF-8.
  mutating func skipString() -> Bool {
    i += 1
    let start = i
    while i < b.count, b[i] != Self.q {
      if b[i] < 0x20 { return false }
      if b[i] == Self.bs {
        guard i + 1 < b.count else { return false }
        switch b[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
          UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
          i += 2
        case UInt8(ascii: "u"):
          guard i + 6 <= b.count, b[(i + 2)..<(i + 6)].allSatisfy({ isHex($0) }) else { return false }
          i += 6
        default: return false
        }
        continue
      }
      i += 1
    }
    guard i < b.count else { return false }
    guard String(validating: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self) != nil else { return false }
    i += 1
    return true
  }

  private func isHex(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
  }

  /// A JSON number (`-? int frac? exp?`).
  mutating func number() -> Bool {
    func digits(_ r: inout JSONScan) -> Int {
      let s = r.i
      while r.i < r.b.count, r.b[r.i] >= 0x30, r.b[r.i] <= 0x39 { r.i += 1 }
      return r.i - s
    }
    if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
    let first = i
    let n = digits(&self)
    guard n > 0, !(n > 1 && b[first] == 0x30) else { return false }
    if i < b.count, b[i] == UInt8(ascii: ".") {
      i += 1
      guard digits(&self) > 0 else { return false }
    }
    if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
      i += 1
      if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
      guard digits(&self) > 0 else { return false }
    }
    return true
  }

  /// A string with any valid escapes decoded (`\uXXXX` surrogate pairs joined; a lone
  /// surrogate is not taken), its bytes valid UTF-8.
  mutating func text() -> String? {
    guard take(Self.q) else { return nil }
    let start = i
    while i < b.count, b[i] != Self.q, b[i] != Self.bs {
      if b[i] < 0x20 { return nil }
      i += 1
    }
    guard i < b.count else { return nil }
    if b[i] == Self.q {
      let s = String(validating: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
      i += 1
      return s
    }
    var out = [UInt8](UnsafeRawBufferPointer(rebasing: b[start..<i]))
    while i < b.count, b[i] != Self.q {
      let c = b[i]
      if c < 0x20 { return nil }
      guard c == Self.bs else {
        out.append(c)
        i += 1
        continue
      }
      guard i + 1 < b.count else { return nil }
      let e = b[i + 1]
      i += 2
      switch e {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        guard var u = hex4() else { return nil }
        if (0xDC00...0xDFFF).contains(u) { return nil }
        if (0xD800...0xDBFF).contains(u) {
          guard i + 1 < b.count, b[i] == Self.bs, b[i + 1] == UInt8(ascii: "u") else { return nil }
          i += 2
          guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
          u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(u) else { return nil }
        out.append(contentsOf: UTF8.encode(scalar)!)
      default: return nil
      }
    }
    guard i < b.count else { return nil }
    i += 1
    return String(validating: out, as: UTF8.self)
  }

  /// Four hex digits of a `\u` escape.
  private mutating func hex4() -> UInt32? {
    guard i + 4 <= b.count else { return nil }
    var v: UInt32 = 0
    for k in 0..<4 {
      let c = b[i + k]
      let d: UInt8
      switch c {
      case 0x30...0x39: d = c - 0x30
      case 0x61...0x66: d = c - 0x61 + 10
      case 0x41...0x46: d = c - 0x41 + 10
      default: return nil
      }
      v = v << 4 | UInt32(d)
    }
    i += 4
    return v
  }

  /// A non-negative plain integer that fits 64 bits unsigned (at most 19 digits).
  mutating func uint64() -> UInt64? {
    ws()
    return digits(max: 19)
  }

  /// `null`, or a value `read` takes: `.some(nil)` for null, nil when neither reads.
  mutating func optional<T>(_ read: (inout JSONScan) -> T?) -> T?? {
    ws()
    if i < b.count, b[i] == UInt8(ascii: "n") { return literal("null") ? .some(nil) : nil }
    return read(&self).map { .some($0) }
  }

  /// An object used as a map: every key once (a repeated key is not taken).
  mutating func dictionary<T>(_ value: (inout JSONScan) -> T?) -> [String: T]? {
    var out = [String: T]()
    let ok = object { r, key in
      guard out[key] == nil, let v = value(&r) else { return false }
      out[key] = v
      return true
    }
    return ok ? out : nil
  }

  /// An array of strings.
  mutating func texts() -> [String]? { array { r in r.text() } }

  /// A string naming a case of `T`.
  mutating func rawValue<T: RawRepresentable>(_ type: T.Type) -> T? where T.RawValue == String {
    text().flatMap(T.init(rawValue:))
  }
}
