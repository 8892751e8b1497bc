import Foundation

/// A pack: many blobs in one immutable object, so a cold sync costs a handful of requests
/// instead of one per blob. A pack is itself a blob (named by the SHA-256 of all its bytes and
/// pinned by the signed index tree), laid out as:
///
/// ```
/// "TSUKUPK1"                          8 bytes, magic and version
/// count                               u32, big-endian
/// count x { sha256[32], offset u64, size u32 }   sorted by sha256; offsets from the data start
/// data                                the blobs, concatenated
/// ```
/// A reader verifies the pack's own hash first (it is pinned), then each blob's hash on
/// extraction, so a parser bug cannot turn into a wrong blob.
public struct Pack: Sendable {
  public struct Entry: Sendable, Equatable {
    public let id: ObjectID
    public let offset: Int
    public let size: Int
  }

  public static let magic = Array("TSUKUPK1".utf8)
  /// At most this many blobs in one pack (a bound on the table a reader allocates).
  public static let maxEntries = 4_000_000

  public let data: Data
  public let entries: [Entry]
  private let dataStart: Int

  /// Builds a pack of `blobs` (duplicates are stored once).
  public static func build(_ blobs: [Data]) -> Data {
    var byID = [ObjectID: Data]()
    for b in blobs { byID[SHA256.hash(b)] = b }
    let ids = byID.keys.sorted()
    var out = Data(magic)
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).bigEndian) { out.append(contentsOf: $0) } }
    func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).bigEndian) { out.append(contentsOf: $0) } }
    u32(ids.count)
    var offset = 0
    for id in ids {
      out.append(contentsOf: id.bytes)
      u64(offset)
      u32(byID[id]!.count)
      offset += byID[id]!.count
    }
    for id in ids { out.append(byID[id]!) }
    return out
  }

  /// Parses a pack's table (through `PackTable`, as every reader does); throws `.integrity`
  /// for anything malformed. Never traps.
  public init(_ data: Data, what: String = "pack") throws {
    let size = data.count
    var entries = [Entry]()
    let start = try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Int in
      let n = try PackTable.count(header: bytes, fileSize: size, what: what)
      let start = PackTable.dataStart(n)
      entries.reserveCapacity(n)
      var order = PackTable.Order(what: what)
      for i in 0..<n {
        let e = try PackTable.entry(
          bytes, at: PackTable.headerSize + i * PackTable.entrySize, index: i, dataLength: size - start, what: what)
        try order.check(e.id, index: i)
        entries.append(Entry(id: e.id, offset: e.offset, size: e.size))
      }
      return start
    }
    self.data = data
    self.entries = entries
    dataStart = start
  }

  /// The verified bytes of one blob of the pack.
  public func blob(_ e: Entry) throws -> Data {
    let start = data.startIndex + dataStart + e.offset
    let d = data.subdata(in: start..<(start + e.size))
    let actual = SHA256.hash(d)
    if actual != e.id {
      throw TsukuError(
        .integrity, "blob '\(e.id.hex)' in a pack is corrupt: its bytes hash to '\(actual.hex)'", reason: .hashMismatch)
    }
    return d
  }

  /// The ids of the blobs whose bytes do not hash to their names, hashed in place on every
  /// core (nothing is copied).
  public func corruptEntries() -> [ObjectID] {
    let list = entries
    let start = dataStart
    // A few hundred blobs per item: one result per item, not per blob.
    let per = 256
    return data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
      // An address, not the pointer: Sendable, and valid for the whole map.
      let addr = UInt(bitPattern: b.baseAddress)
      return ParallelMap.map((list.count + per - 1) / per) { k in
        list[(k * per)..<min(list.count, (k + 1) * per)].compactMap { e -> ObjectID? in
          let p = UnsafeRawPointer(bitPattern: addr).map { $0 + start + e.offset }
          return SHA256.hash(UnsafeRawBufferPointer(start: p, count: e.size)) != e.id ? e.id : nil
        }
      }.flatMap { $0 }
    }.sorted()
  }

  /// The entry for `id`, by binary search.
  public func entry(_ id: ObjectID) -> Entry? {
    var lo = 0
    var hi = entries.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if entries[mid].id < id { lo = mid + 1 } else { hi = mid }
    }
    return lo < entries.count && entries[lo].id == id ? entries[lo] : nil
  }
}
