/// The name of an immutable blob: its SHA-256, written as 64 lowercase hex digits.
///
/// Parsing is strict: exactly 64 characters of `0-9a-f`. Uppercase, whitespace, a prefix such as
/// `sha256:` or any other length is refused, so one blob has exactly one name.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
  // Four big-endian words: cheap to hash and compare, no heap allocation.
  public let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

  /// Builds an ID from the 32 raw digest bytes.
  public init(bytes: some Collection<UInt8>) {
    precondition(bytes.count == 32, "an object id is 32 bytes")
    var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    for (i, b) in bytes.enumerated() {
      switch i >> 3 {
      case 0: w.0 = w.0 << 8 | UInt64(b)
      case 1: w.1 = w.1 << 8 | UInt64(b)
      case 2: w.2 = w.2 << 8 | UInt64(b)
      default: w.3 = w.3 << 8 | UInt64(b)
      }
    }
    (w0, w1, w2, w3) = w
  }

  /// Parses 64 lowercase hex digits; returns nil for anything else.
  public init?(hex: some StringProtocol) {
    self.init(hexUTF8: hex.utf8)
  }

  /// Parses 64 lowercase hex digits given as UTF-8 bytes; nil for anything else.
  public init?(hexUTF8 utf8: some Collection<UInt8>) {
    guard utf8.count == 64 else { return nil }
    var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var i = 0
    for c in utf8 {
      let v: UInt8
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c &- UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c &- UInt8(ascii: "a") &+ 10
      default: return nil
      }
      switch i >> 4 {
      case 0: w.0 = w.0 << 4 | UInt64(v)
      case 1: w.1 = w.1 << 4 | UInt64(v)
      case 2: w.2 = w.2 << 4 | UInt64(v)
      default: w.3 = w.3 << 4 | UInt64(v)
      }
      i += 1
    }
    (w0, w1, w2, w3) = w
  }

  /// Parses like `init?(hex:)` but throws a usage error naming the bad value.
  public static func parse(_ text: String) throws -> ObjectID {
    guard let id = ObjectID(hex: text) else {
      throw TsukuError(.usage, "invalid sha256 '\(text.prefix(80))': expected 64 lowercase hex digits")
    }
    return id
  }

  /// Compares with 32 big-endian bytes at `p` (as in a pack table) without copying them.
  @inline(__always)
  public func compare(toBigEndianAt p: UnsafeRawPointer) -> Int {
    @inline(__always) func word(_ k: Int) -> UInt64 { UInt64(bigEndian: p.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self)) }
    var other = word(0)
    if w0 != other { return w0 < other ? -1 : 1 }
    other = word(1)
    if w1 != other { return w1 < other ? -1 : 1 }
    other = word(2)
    if w2 != other { return w2 < other ? -1 : 1 }
    other = word(3)
    if w3 != other { return w3 < other ? -1 : 1 }
    return 0
  }

  /// The 32 raw bytes.
  public var bytes: [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(32)
    for w in [w0, w1, w2, w3] { for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: w >> UInt64(s))) } }
    return out
  }

  private static let digits = Array("0123456789abcdef".utf8)

  public var hex: String {
    var out = [UInt8](repeating: 0, count: 64)
    var i = 0
    for w in [w0, w1, w2, w3] {
      for s in stride(from: 60, through: 0, by: -4) {
        out[i] = Self.digits[Int((w >> UInt64(s)) & 0xf)]
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  public var description: String { hex }

  /// The first two hex digits: the fan-out folder of the store layout.
  public var fanout: String { String(hex.prefix(2)) }

  /// The path of this blob in the store layout, `objects/sha256/ab/<64 hex>`.
  public var path: String {
    let h = hex
    return "objects/sha256/\(h.prefix(2))/\(h)"
  }

  public static func < (a: ObjectID, b: ObjectID) -> Bool {
    (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
  }

  public init(from decoder: Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let id = ObjectID(hex: text) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "invalid sha256 '\(text.prefix(80))'"))
    }
    self = id
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(hex)
  }
}
