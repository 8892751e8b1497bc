import Foundation
import Store

/// Appending entries to a tiled log, without I/O: from the tree of `oldSize` leaves (its
/// right-edge tiles read through a `TileSource`) to the tiles a tree with `entries` more has
/// that the old one lacked, and the new root. Each new tile is a new name (a partial tile
/// grows into `.p/<W+1>`, then the full tile), so nothing written before is ever rewritten.
public enum TileAppend {
  /// The new tiles (entries bundles and hash tiles, each with its bytes) and the new root.
  public struct Result: Sendable {
    public var tiles: [(Tile, [UInt8])]
    public var size: UInt64
    public var rootHash: [UInt8]
  }

  public static func append(oldSize: UInt64, entries: [[UInt8]], source: TileSource) throws -> Result {
    let w = UInt64(Tile.width)
    var out = [(Tile, [UInt8])]()
    let newSize = oldSize + UInt64(entries.count)
    // Entries bundles: the old partial bundle, extended.
    let firstBundle = oldSize / w
    var bundled = [[UInt8]]()
    if oldSize % w != 0 {
      let t = Tile(level: nil, index: firstBundle, width: Int(oldSize % w))
      bundled = try EntryBundle.decode(try source.readTile(t), count: t.width, what: "'\(t.path)'")
    }
    bundled += entries
    for t in Tile.newTiles(level: nil, oldSize: oldSize, size: newSize) {
      let start = Int((t.index - firstBundle) * w)
      out.append((t, try EntryBundle.encode(Array(bundled[start..<start + t.width]))))
    }
    // Hash tiles, level by level: each level's new hashes are the roots of the tiles the
    // level below just filled.
    var newHashes = entries.map(Merkle.leafHash)
    var level = 0
    var oldCount = oldSize
    while !newHashes.isEmpty {
      let first = oldCount / w
      var row = [[UInt8]]()
      if oldCount % w != 0 {
        let t = Tile(level: level, index: first, width: Int(oldCount % w))
        let bytes = try source.readTile(t)
        guard bytes.count == t.width * Merkle.hashSize else {
          throw TsukuError(.integrity, "log tile '\(t.path)' is \(bytes.count) bytes, \(t.width * Merkle.hashSize) expected")
        }
        row = stride(from: 0, to: bytes.count, by: Merkle.hashSize).map { Array(bytes[$0..<$0 + Merkle.hashSize]) }
      }
      row += newHashes
      let count = oldCount + UInt64(newHashes.count)
      var next = [[UInt8]]()
      for n in first...(count - 1) / w {
        let start = Int((n - first) * w)
        let width = Int(min(w, count - n * w))
        let hashes = row[start..<start + width]
        if n * w + UInt64(width) > oldCount { out.append((Tile(level: level, index: n, width: width), Array(hashes.joined()))) }
        if width == Tile.width && (n + 1) * w > oldCount { next.append(Merkle.rootHash(hashes)) }
      }
      newHashes = next
      oldCount /= w
      level += 1
    }
    // The root from the new tiles themselves, the way a reader will compute it.
    let overlay = Overlay(tiles: Dictionary(out.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a }), base: source)
    let root = try TileLog(source: overlay, size: newSize).treeHash(size: newSize)
    return Result(tiles: out, size: newSize, rootHash: root)
  }

  /// New tiles in memory over the tiles already stored.
  struct Overlay: TileSource {
    var tiles: [Tile: [UInt8]]
    var base: TileSource
    func readTile(_ tile: Tile) throws -> [UInt8] { try tiles[tile] ?? base.readTile(tile) }
  }
}

/// Tiles in memory, for tests and for a log being built from nothing.
public final class MemoryTiles: TileSource, @unchecked Sendable {
  public var tiles: [Tile: [UInt8]] = [:]
  public init() {}
  public func readTile(_ tile: Tile) throws -> [UInt8] {
    guard let t = tiles[tile] else { throw TsukuError(.notFound, "log tile '\(tile.path)' not found") }
    return t
  }
}

extension Tile {
  /// The full tile a partial one is the prefix of (nil for a full tile). C2SP tlog-tiles lets
  /// a log delete a partial tile once the full one is published; a reader then uses this.
  public var full: Tile? { width < Tile.width ? Tile(level: level, index: index, width: Tile.width) : nil }

  /// This (partial) tile's bytes, cut from `fullBytes`, the bytes of `full`: the first
  /// `width` hashes of a hash tile, the first `width` entries of an entries bundle. The
  /// result is checked as the partial tile itself would be (against the checkpoint's root).
  public func partial(of fullBytes: [UInt8]) throws -> [UInt8] {
    if level == nil {
      let entries = try EntryBundle.decode(fullBytes, count: Tile.width, what: "'\(Tile(level: nil, index: index, width: Tile.width).path)'")
      return try EntryBundle.encode(Array(entries.prefix(width)))
    }
    guard fullBytes.count == Tile.width * Merkle.hashSize else {
      throw TsukuError(
        .integrity, "log tile '\(Tile(level: level, index: index, width: Tile.width).path)' is \(fullBytes.count) bytes, \(Tile.width * Merkle.hashSize) expected")
    }
    return Array(fullBytes.prefix(width * Merkle.hashSize))
  }
}
