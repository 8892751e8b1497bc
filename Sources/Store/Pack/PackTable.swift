import Foundation

/// The one decoding of a pack's header and table, used by every reader: a pack held in memory
/// (`Pack`), a cached pack looked up (`PackedObjects`), read whole (`PackFile.table`), merged or
/// rewritten (`PackFile.mergeTables`), and a pack streamed from a source (`PackAssembly`).
///
/// Nothing here trusts a value it decodes: the count is checked against `Pack.maxEntries` and
/// the file's size before any product is formed; an entry's offset is decoded as a `UInt64`
/// and its size as a `UInt32`, both compared with the data region's length before either is
/// converted to `Int`, so an entry that passes lies wholly inside the data region and no sum
/// a reader forms from it can overflow. A bad value is a thrown `.integrity` error naming it,
/// never a trap or a read outside a buffer or a mapping.
enum PackTable {
  /// The header: magic (8 bytes) and the entry count (u32, big-endian).
  static let headerSize = 12
  /// One entry: id (32 bytes), offset (u64, big-endian), size (u32, big-endian).
  static let entrySize = 44

  /// The error for a malformed pack; `what` names the pack.
  static func malformed(_ what: String, _ why: String) -> TsukuError {
    TsukuError(.integrity, "\(what) is malformed: \(why)", reason: .malformed)
  }

  /// The entry count of the header at the start of `header`, checked: the magic, at most
  /// `Pack.maxEntries` entries, and a table that fits in a file of `fileSize` bytes.
  static func count(header: UnsafeRawBufferPointer, fileSize: Int, what: String) throws -> Int {
    guard header.count >= headerSize, fileSize >= headerSize, header.prefix(8).elementsEqual(Pack.magic) else {
      throw malformed(what, "no TSUKUPK1 header")
    }
    var n = 0
    for k in 8..<12 { n = n << 8 | Int(header[k]) }
    guard n <= Pack.maxEntries else {
      throw malformed(what, "\(n) entries, more than the \(Pack.maxEntries) a pack may hold")
    }
    // n <= maxEntries: the product cannot overflow.
    guard dataStart(n) <= fileSize else { throw malformed(what, "table of \(n) entries is longer than the pack") }
    return n
  }

  /// The entry count of a 12-byte header held in an array (see `count(header:fileSize:what:)`).
  static func count(_ header: [UInt8], fileSize: Int, what: String) throws -> Int {
    try header.withUnsafeBytes { try count(header: $0, fileSize: fileSize, what: what) }
  }

  /// Where the data region starts after a table of `count` entries (a checked count).
  static func dataStart(_ count: Int) -> Int { headerSize + count * entrySize }

  /// One decoded entry: its blob lies at `offset..<offset + size` of the data region.
  struct Entry {
    var id: ObjectID
    var offset: Int
    var size: Int
  }

  /// Decodes entry number `index` from the 44 bytes at `at` in `bytes`, for a data region of
  /// `dataLength` bytes: throws unless the blob lies wholly inside that region.
  @inline(__always)
  static func entry(
    _ bytes: UnsafeRawBufferPointer, at: Int, index: Int, dataLength: Int, what: @autoclosure () -> String
  ) throws -> Entry {
    guard at >= 0, at <= bytes.count - entrySize else { throw malformed(what(), "short table at entry \(index)") }
    var offset: UInt64 = 0
    for k in 0..<8 { offset = offset << 8 | UInt64(bytes[at + 32 + k]) }
    var size: UInt64 = 0
    for k in 0..<4 { size = size << 8 | UInt64(bytes[at + 40 + k]) }
    guard dataLength >= 0, offset <= UInt64(dataLength), size <= UInt64(dataLength) - offset else {
      throw malformed(
        what(),
        "entry \(index) points outside the pack (offset \(offset), size \(size), data region \(dataLength) bytes)")
    }
    let id = ObjectID(bytes: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + 32)]))
    return Entry(id: id, offset: Int(offset), size: Int(size))
  }

  /// Checks that a table's ids are strictly increasing, one entry at a time.
  struct Order {
    private var previous: ObjectID?
    let what: String
    init(what: String) { self.what = what }

    mutating func check(_ id: ObjectID, index: Int) throws {
      if let p = previous, !(p < id) { throw PackTable.malformed(what, "table not sorted at entry \(index)") }
      previous = id
    }
  }

  /// Adds `base` (where a data region lands in a merged one) to an offset within it, throwing
  /// rather than trapping should the sum not fit.
  static func rebase(_ offset: Int, on base: Int, what: String) throws -> Int {
    let (sum, overflow) = base.addingReportingOverflow(offset)
    guard !overflow, base >= 0, offset >= 0 else {
      throw malformed(what, "offset \(offset) does not fit past \(base) bytes of merged data")
    }
    return sum
  }
}
