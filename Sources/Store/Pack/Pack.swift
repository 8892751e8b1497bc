import Dispatch
import Foundation
import Synchronization

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

  /// Parses a pack's table; throws `.integrity` for anything malformed. Never traps.
  public init(_ data: Data, what: String = "pack") throws {
    func bad(_ why: String) -> TsukuError { TsukuError(.integrity, "\(what) is malformed: \(why)") }
    let count = data.count
    var entries = [Entry]()
    try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
      guard count >= 12, bytes.prefix(8).elementsEqual(Pack.magic) else { throw bad("no TSUKUPK1 header") }
      func be(_ at: Int, _ n: Int) -> Int {
        var v = 0
        for i in at..<(at + n) { v = v << 8 | Int(bytes[i]) }
        return v
      }
      let n = be(8, 4)
      guard n <= Pack.maxEntries else { throw bad("\(n) entries") }
      let tableEnd = 12 + n * 44
      guard tableEnd <= count else { throw bad("table of \(n) entries is longer than the pack") }
      let dataLength = count - tableEnd
      entries.reserveCapacity(n)
      var previous: ObjectID?
      for i in 0..<n {
        let at = 12 + i * 44
        let id = ObjectID(bytes: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + 32)]))
        let offset = be(at + 32, 8)
        let size = be(at + 40, 4)
        guard offset >= 0, offset <= dataLength, size <= dataLength - offset else {
          throw bad("entry \(i) points outside the pack")
        }
        if let p = previous, !(p < id) { throw bad("table not sorted at entry \(i)") }
        previous = id
        entries.append(Entry(id: id, offset: offset, size: size))
      }
    }
    let tableEnd = 12 + entries.count * 44
    self.data = data
    self.entries = entries
    dataStart = tableEnd
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
    let workers = min(max(1, ProcessInfo.processInfo.activeProcessorCount), max(1, list.count / 64))
    let bad = Mutex([ObjectID]())
    data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
      // An address, not the pointer: Sendable, and valid for the whole concurrentPerform.
      let addr = UInt(bitPattern: b.baseAddress)
      DispatchQueue.concurrentPerform(iterations: workers) { w in
        var mine = [ObjectID]()
        var i = w
        while i < list.count {
          let e = list[i]
          let from = start + e.offset
          let p = UnsafeRawPointer(bitPattern: addr).map { $0 + from }
          if SHA256.hash(UnsafeRawBufferPointer(start: p, count: e.size)) != e.id { mine.append(e.id) }
          i += workers
        }
        if !mine.isEmpty { bad.withLock { $0 += mine } }
      }
    }
    return bad.withLock { $0 }.sorted()
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
