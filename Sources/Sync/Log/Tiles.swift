import Foundation
import Store

/// One tile of the log, as the C2SP tlog-tiles spec names them: height 8 (256 hashes or
/// entries per full tile), a tile at level `level` holds the tree's nodes at height
/// `8 * level`, numbered from the left; a partial tile (the right edge of the tree) holds
/// `width` < 256 of them. `level` nil is the entries bundle of level-0 tile `index`.
public struct Tile: Hashable, Sendable, CustomStringConvertible {
  /// Hashes (or entries) in a full tile: 2^8.
  public static let width = 256
  /// The tree height a tile spans.
  public static let height = 8

  /// 0 ... 7 for a hash tile, nil for an entries bundle.
  public var level: Int?
  public var index: UInt64
  /// 1 ... 256.
  public var width: Int

  public init(level: Int?, index: UInt64, width: Int) {
    self.level = level
    self.index = index
    self.width = width
  }

  /// `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, relative to the log's prefix; N in
  /// three-digit groups, every group but the last prefixed with `x` (`x001/x234/067`).
  public var path: String {
    var groups = [String]()
    var n = index
    repeat {
      groups.insert(String(format: "%03d", Int(n % 1000)), at: 0)
      n /= 1000
    } while n > 0
    let number = groups.dropLast().map { "x" + $0 }.joined(separator: "/") + (groups.count > 1 ? "/" : "") + groups.last!
    let partial = width < Tile.width ? ".p/\(width)" : ""
    return "tile/" + (level.map(String.init) ?? "entries") + "/" + number + partial
  }

  public var description: String { path }

  /// Parses a tile path (as `path` writes it, nothing else: no leading zeros beyond the
  /// three digits, no empty or extra parts); nil for anything else.
  public init?(path: String) {
    var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard parts.count >= 3, parts.count <= 12, parts[0] == "tile" else { return nil }
    let level: Int?
    if parts[1] == "entries" {
      level = nil
    } else {
      guard parts[1].count == 1, let l = Int(parts[1]), (0...7).contains(l) else { return nil }
      level = l
    }
    var width = Tile.width
    if parts.count >= 4, parts[parts.count - 2].hasSuffix(".p") {
      let w = parts.removeLast()
      guard let v = Int(w), v >= 1, v < Tile.width, String(v) == w else { return nil }
      width = v
      parts[parts.count - 1].removeLast(2)
    }
    let groups = parts.dropFirst(2)
    var n: UInt64 = 0
    for (i, g) in groups.enumerated() {
      let last = i == groups.count - 1
      let digits = last ? Substring(g) : (g.hasPrefix("x") ? g.dropFirst() : "")
      guard digits.count == 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let d = UInt64(digits) else { return nil }
      let (m, o1) = n.multipliedReportingOverflow(by: 1000)
      guard !o1 else { return nil }
      n = m + d
    }
    if groups.count > 1, groups.first == "x000" { return nil }
    self.init(level: level, index: n, width: width)
  }

  /// The tiles of `level` (nil: the entries bundles) a tree of `size` leaves has that a tree
  /// of `oldSize` leaves lacked: what appending writes.
  public static func newTiles(level: Int?, oldSize: UInt64, size: UInt64) -> [Tile] {
    let shift = UInt64(height * (level ?? 0))
    let (old, new) = (oldSize >> shift, size >> shift)
    guard new > old else { return [] }
    let w = UInt64(width)
    return (old / w...(new - 1) / w).compactMap { n in
      let end = Swift.min(new, (n + 1) * w)
      let oldEnd = Swift.min(old, (n + 1) * w)
      return end > oldEnd ? Tile(level: level, index: n, width: Int(end - n * w)) : nil
    }
  }

  /// The tile of `level` holding stored hash `i` in a tree of `size` leaves, at the width it
  /// has there.
  public static func holding(level: Int?, hash i: UInt64, size: UInt64) -> Tile {
    let count = size >> UInt64(height * (level ?? 0))
    let n = i / UInt64(width)
    return Tile(level: level, index: n, width: Int(Swift.min(UInt64(width), count - n * UInt64(width))))
  }
}

/// The entries bundle format of C2SP tlog-tiles: each entry as a 2-byte big-endian length and
/// its bytes, one after the other.
public enum EntryBundle {
  /// The largest entry the format can hold.
  public static let maxEntry = 0xFFFF

  public static func encode(_ entries: [[UInt8]]) throws -> [UInt8] {
    var out = [UInt8]()
    for e in entries {
      guard e.count <= maxEntry else { throw TsukuError(.usage, "a log entry of \(e.count) bytes is over the \(maxEntry) allowed") }
      out += [UInt8(e.count >> 8), UInt8(e.count & 0xFF)] + e
    }
    return out
  }

  /// The entries of a bundle; `.integrity` when the bytes are cut short, run past the last
  /// entry, or hold more entries than `count`.
  public static func decode(_ bytes: [UInt8], count: Int, what: String) throws -> [[UInt8]] {
    var out = [[UInt8]]()
    var i = 0
    while i < bytes.count {
      guard out.count < count, i + 2 <= bytes.count else {
        throw TsukuError(.integrity, "log entries bundle \(what) holds more than its \(count) entries")
      }
      let n = Int(bytes[i]) << 8 | Int(bytes[i + 1])
      guard i + 2 + n <= bytes.count else { throw TsukuError(.integrity, "log entries bundle \(what) is cut short") }
      out.append(Array(bytes[i + 2..<i + 2 + n]))
      i += 2 + n
    }
    guard out.count == count else {
      throw TsukuError(.integrity, "log entries bundle \(what) holds \(out.count) entries, \(count) expected")
    }
    return out
  }
}

/// Where a `TileLog` reads tiles: the store's `log/` files, a cache, or both. A tile it cannot
/// find throws `.notFound`.
public protocol TileSource {
  func readTile(_ tile: Tile) throws -> [UInt8]
}

/// A tree of `size` leaves read from its tiles: subtree hashes, the root, proofs, entries.
/// Every tile read is checked for its length; a hash tile from an untrusted source is only as
/// good as the root it is compared with, which is what the proofs below are for. With
/// `leavesFromEntries`, level-0 hashes are computed from entries bundles (so a client that
/// needs the entries anyway reads them once, not the level-0 hash tile as well).
public final class TileLog {
  public let size: UInt64
  let source: TileSource
  let leavesFromEntries: Bool
  private var cache: [Tile: [[UInt8]]] = [:]
  private var entryCache: [Tile: [[UInt8]]] = [:]

  public init(source: TileSource, size: UInt64, leavesFromEntries: Bool = false) {
    self.source = source
    self.size = size
    self.leavesFromEntries = leavesFromEntries
  }

  /// The entries bundle holding leaf `index`, as wide as this tree has it.
  public func entries(tile n: UInt64) throws -> [[UInt8]] {
    let t = Tile.holding(level: nil, hash: n * UInt64(Tile.width), size: size)
    if let e = entryCache[t] { return e }
    let e = try EntryBundle.decode(try source.readTile(t), count: t.width, what: "'\(t.path)'")
    entryCache[t] = e
    return e
  }

  /// The entry of leaf `index`.
  public func entry(_ index: UInt64) throws -> [UInt8] {
    guard index < size else { throw TsukuError(.integrity, "log leaf \(index) is beyond the tree of \(size)") }
    return try entries(tile: index / UInt64(Tile.width))[Int(index % UInt64(Tile.width))]
  }

  /// The stored hashes of a tile (level `level`, holding hash `i`).
  func hashes(level: Int, holding i: UInt64) throws -> [[UInt8]] {
    let t = Tile.holding(level: level, hash: i, size: size)
    if let h = cache[t] { return h }
    let h: [[UInt8]]
    if level == 0 && leavesFromEntries {
      h = try entries(tile: t.index).map(Merkle.leafHash)
    } else {
      let bytes = try source.readTile(t)
      guard bytes.count == t.width * Merkle.hashSize else {
        throw TsukuError(.integrity, "log tile '\(t.path)' is \(bytes.count) bytes, \(t.width * Merkle.hashSize) expected")
      }
      h = stride(from: 0, to: bytes.count, by: Merkle.hashSize).map { Array(bytes[$0..<$0 + Merkle.hashSize]) }
    }
    cache[t] = h
    return h
  }

  /// The node over leaves `index << level ..< (index + 1) << level` (wholly inside the tree).
  public func node(level: Int, index: UInt64) throws -> [UInt8] {
    guard (index + 1) << UInt64(level) <= size else {
      throw TsukuError(.integrity, "log node \(level)/\(index) is beyond the tree of \(size)")
    }
    let stored = level / Tile.height * Tile.height
    let tileLevel = level / Tile.height
    let span = UInt64(1) << UInt64(level - stored)
    let first = index * span
    let w = UInt64(Tile.width)
    let h = try hashes(level: tileLevel, holding: first)
    let base = Int(first - first / w * w)
    return Merkle.rootHash(h[base..<base + Int(span)])
  }

  /// The hash of leaves `range`.
  public func hash(_ range: Range<UInt64>) throws -> [UInt8] {
    try Merkle.rangeHash(range) { try node(level: $0, index: $1) }
  }

  /// The root of the first `n` leaves (n ≤ size).
  public func treeHash(size n: UInt64) throws -> [UInt8] { try hash(0..<n) }

  public func inclusionProof(index: UInt64, size n: UInt64) throws -> [[UInt8]] {
    try Merkle.inclusionProof(index: index, size: n) { try hash($0) }
  }

  public func consistencyProof(old: UInt64, new: UInt64) throws -> [[UInt8]] {
    try Merkle.consistencyProof(old: old, size: new) { try hash($0) }
  }
}
