import Foundation
import Store

/// What `IndexWalk.keptEntries` keeps of a shard: names, categories, types and blob
/// references; the decoder skips the rest of every entry.
struct KeptShard: Decodable {
  struct Entry: Decodable {
    var name: String
    var category: Category
    var recipe: BlobRef
    var golden: [GoldenRef]
    var type: String
  }
  var format: Int
  var type: String
  var entries: [Entry]

  /// The scan below when it can read the shard, else the full decoder (which also gives the
  /// exact message for a shard that is not valid).
  static func parse(_ bytes: Data, what: String) throws -> KeptShard {
    let s = try scan(bytes) ?? JSON.decode(KeptShard.self, bytes, what: what)
    try checkFormat(s.format, what)
    guard s.type == "index-shard" else { throw TsukuError(.integrity, "\(what) has type '\(s.type)'") }
    return s
  }

  /// A strict one-pass reader of the shard's JSON: every value is checked to be well-formed
  /// JSON, the fields kept are read, the others skipped without building them. Nil for
  /// anything it does not take (malformed JSON, a missing or repeated field, an escape in a
  /// key, a number that is not a plain integer, a hash that is not 64 lowercase hex digits),
  /// so the caller falls back to the full decoder and its message.
  static func scan(_ bytes: Data) -> KeptShard? {
    bytes.withUnsafeBytes { raw in
      var r = JSONScan(raw)
      return r.shard()
    }
  }
}

/// Sets a field once: false for a value that did not read or a field seen before.
private func once<T>(_ slot: inout T?, _ value: T?) -> Bool {
  guard slot == nil, let value else { return false }
  slot = value
  return true
}

/// The reader behind `KeptShard.scan`.
private struct JSONScan {
  let b: UnsafeRawBufferPointer
  var i = 0
  init(_ b: UnsafeRawBufferPointer) { self.b = b }

  private static let q = UInt8(ascii: "\""), bs = UInt8(ascii: "\\")

  mutating func shard() -> KeptShard? {
    var format: Int?, type: String?, entries: [KeptShard.Entry]?
    guard
      object({ r, key in
        switch key {
        case "format": return once(&format, r.int())
        case "type": return once(&type, r.string())
        case "entries": return once(&entries, r.array { r in r.entry() })
        default: return r.skip()
        }
      })
    else { return nil }
    ws()
    guard i == b.count, let format, let type, let entries else { return nil }
    return KeptShard(format: format, type: type, entries: entries)
  }

  mutating func entry() -> KeptShard.Entry? {
    var name: String?, category: Category?, recipe: BlobRef?, golden: [GoldenRef]?, type: String?
    guard
      object({ r, key in
        switch key {
        case "name": return once(&name, r.string())
        case "category": return once(&category, r.string().flatMap(Category.init(rawValue:)))
        case "recipe": return once(&recipe, r.blobRef())
        case "golden": return once(&golden, r.array { r in r.golden() })
        case "type": return once(&type, r.string())
        default: return r.skip()
        }
      }), let name, let category, let recipe, let golden, let type
    else { return nil }
    return KeptShard.Entry(name: name, category: category, recipe: recipe, golden: golden, type: type)
  }

  mutating func blobRef() -> BlobRef? {
    var id: ObjectID?, size: Int?
    guard
      object({ r, key in
        switch key {
        case "sha256": return once(&id, r.objectID())
        case "size": return once(&size, r.int())
        default: return r.skip()
        }
      }), let id, let size
    else { return nil }
    return BlobRef(sha256: id, size: size)
  }

  mutating func golden() -> GoldenRef? {
    var platform: String?, version: String?, id: ObjectID?, size: Int?
    guard
      object({ r, key in
        switch key {
        case "platform": return once(&platform, r.string())
        case "version": return once(&version, r.string())
        case "sha256": return once(&id, r.objectID())
        case "size": return once(&size, r.int())
        default: return r.skip()
        }
      }), let platform, let version, let id, let size
    else { return nil }
    return GoldenRef(platform: platform, version: version, sha256: id, size: size)
  }

  // MARK: - JSON

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
    let start = i
    var v = 0
    while i < b.count, b[i] >= 0x30, b[i] <= 0x39, i - start < 18 {
      v = v * 10 + Int(b[i] - 0x30)
      i += 1
    }
    let n = i - start
    guard n > 0, !(n > 1 && b[start] == 0x30) else { return nil }
    // A fraction, an exponent or more digits: not taken.
    if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")
      || (b[i] >= 0x30 && b[i] <= 0x39)
    {
      return nil
    }
    return neg ? -v : v
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
}
