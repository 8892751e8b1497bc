import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Pack files on disk, handled without reading them into memory: their blobs verified with
/// bounded buffers on every core, and several packs merged into one by the kernel
/// (`copy_file_range`), so a sync or a `verify` of a registry of any size holds a few
/// megabytes, not the registry.
public enum PackFile {
  /// One entry of a pack's table.
  public struct Entry: Sendable {
    public var id: ObjectID
    public var offset: Int
    public var size: Int
  }

  /// A pack's table read from its file (checked like `Pack.init` checks it).
  public struct Table: Sendable {
    public let path: String
    public let entries: [Entry]
    public let dataStart: Int
    public let fileSize: Int
  }

  /// The table of the pack at `path`, checked: magic, bounds, strict order.
  public static func table(_ path: String) throws -> Table {
    var entries = [Entry]()
    let (dataStart, fileSize) = try forEachEntry(path, reserve: { entries.reserveCapacity($0) }) { e in
      entries.append(Entry(id: e.id, offset: e.offset, size: e.size))
    }
    return Table(path: path, entries: entries, dataStart: dataStart, fileSize: fileSize)
  }

  /// Visits the entries of the pack at `path` in table order, each decoded and checked by
  /// `PackTable` (bounds, strict order) before it is visited; `reserve` first gets the count.
  /// Reads a slice at a time: the raw table is as big as the entries (15 MB at 100K recipes).
  /// Returns where the data starts and the file's size.
  private static func forEachEntry(
    _ path: String, reserve: (Int) -> Void = { _ in }, _ visit: (PackTable.Entry) throws -> Void
  ) throws -> (dataStart: Int, fileSize: Int) {
    let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
    defer { close(fd) }
    let fileSize = try FileIO.size(fd, path)
    let what = "pack '\(path)'"
    let count = try readCount(fd, path, fileSize: fileSize)
    reserve(count)
    let dataStart = PackTable.dataStart(count)
    let dataLength = fileSize - dataStart
    var order = PackTable.Order(what: what)
    let perRead = 1 << 14
    var raw = [UInt8](repeating: 0, count: min(count, perRead) * PackTable.entrySize)
    var done = 0
    while done < count {
      let n = min(perRead, count - done)
      let want = n * PackTable.entrySize
      guard try FileIO.read(fd, &raw, at: PackTable.headerSize + done * PackTable.entrySize, count: want, path) == want
      else { throw PackTable.malformed(what, "short table") }
      try raw.withUnsafeBytes { b in
        for j in 0..<n {
          let e = try PackTable.entry(
            b, at: j * PackTable.entrySize, index: done + j, dataLength: dataLength, what: what)
          try order.check(e.id, index: done + j)
          try visit(e)
        }
      }
      done += n
    }
    return (dataStart, fileSize)
  }

  /// Re-hashes every blob of the pack at `path` on all cores, reading it in bounded chunks.
  /// Returns the ids of the blobs whose bytes do not hash to their names, and the bytes read.
  public static func verify(_ path: String, chunk: Int = 4 << 20) throws -> (corrupt: [ObjectID], blobs: Int, bytes: Int) {
    let t = try table(path)
    let dataStart = t.dataStart
    let entries = t.entries
    // Entries in file order (a permutation of 4-byte positions, not a sorted copy of the
    // 48-byte entries: 16 MB at a hundred thousand recipes), cut into runs of about `chunk`
    // bytes: each run is one read.
    var order = [UInt32](unsafeUninitializedCapacity: entries.count) { b, n in
      for i in 0..<entries.count { b[i] = UInt32(i) }
      n = entries.count
    }
    order.sort { entries[Int($0)].offset < entries[Int($1)].offset }
    let ordered = order
    var cut = [Range<Int>]()
    var start = 0
    while start < ordered.count {
      var end = start
      let first = entries[Int(ordered[start])].offset
      while end < ordered.count,
        end == start || entries[Int(ordered[end])].offset + entries[Int(ordered[end])].size - first <= chunk
      {
        end += 1
      }
      cut.append(start..<end)
      start = end
    }
    let runs = cut
    // Each thread reads through a descriptor and a buffer of its own.
    let corrupt = try ParallelMap.map(
      runs.count, state: { (file: try OpenFile(path), buffer: [UInt8](repeating: 0, count: chunk)) }
    ) { s, r -> [ObjectID] in
      let run = runs[r]
      let from = entries[Int(ordered[run.lowerBound])].offset
      let to = run.map { entries[Int(ordered[$0])].offset + entries[Int(ordered[$0])].size }.max()!
      if to - from > s.buffer.count { s.buffer = [UInt8](repeating: 0, count: to - from) }
      guard try FileIO.read(s.file.fd, &s.buffer, at: dataStart + from, count: to - from, path) == to - from else {
        throw TsukuError(.integrity, "pack '\(path)' is truncated", reason: .malformed)
      }
      return s.buffer.withUnsafeBytes { b in
        run.compactMap { i -> ObjectID? in
          let e = entries[Int(ordered[i])]
          let o = e.offset - from
          return SHA256.hash(UnsafeRawBufferPointer(rebasing: b[o..<(o + e.size)])) != e.id ? e.id : nil
        }
      }
    }.flatMap { $0 }
    return (corrupt.sorted(), entries.count, entries.reduce(0) { $0 + $1.size })
  }

  /// A pack's header: entry count, where its data starts, its size (checked like `table`).
  static func header(_ path: String) throws -> (count: Int, dataStart: Int, fileSize: Int) {
    let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
    defer { close(fd) }
    let fileSize = try FileIO.size(fd, path)
    let count = try readCount(fd, path, fileSize: fileSize)
    return (count, PackTable.dataStart(count), fileSize)
  }

  /// The checked entry count of the pack open as `fd` (see `PackTable.count`).
  private static func readCount(_ fd: Int32, _ path: String, fileSize: Int) throws -> Int {
    var head = [UInt8](repeating: 0, count: PackTable.headerSize)
    let got = fileSize >= PackTable.headerSize ? try FileIO.read(fd, &head, at: 0, path) : 0
    return try PackTable.count(Array(head[0..<got]), fileSize: fileSize, what: "pack '\(path)'")
  }

  /// The ids a damaged pack's table still names, as far as its header and file allow (read
  /// without checking bounds or order): what was lost when it is set aside. Empty when the
  /// header is unreadable.
  public static func namedBlobs(_ path: String) -> [ObjectID] {
    guard let fd = try? FileIO.open(path, O_RDONLY, failing: "cannot read") else { return [] }
    defer { close(fd) }
    guard let fileSize = try? FileIO.size(fd, path), fileSize >= PackTable.headerSize else { return [] }
    var head = [UInt8](repeating: 0, count: PackTable.headerSize)
    guard (try? FileIO.read(fd, &head, at: 0, path)) == PackTable.headerSize, Array(head[0..<8]) == Pack.magic else {
      return []
    }
    let declared = head[8..<12].reduce(0) { $0 << 8 | Int($1) }
    let count = min(declared, Pack.maxEntries, (fileSize - PackTable.headerSize) / PackTable.entrySize)
    var ids = Set<ObjectID>()
    var raw = [UInt8](repeating: 0, count: 256 * PackTable.entrySize)
    var done = 0
    while done < count {
      let n = min(256, count - done)
      let want = n * PackTable.entrySize
      guard (try? FileIO.read(fd, &raw, at: PackTable.headerSize + done * PackTable.entrySize, count: want, path)) == want
      else { break }
      raw.withUnsafeBytes { b in
        for j in 0..<n {
          let at = j * PackTable.entrySize
          ids.insert(ObjectID(bytes: UnsafeRawBufferPointer(rebasing: b[at..<(at + 32)])))
        }
      }
      done += n
    }
    return ids.sorted()
  }

  /// Checks the table of the pack at `path` without holding it (header, bounds, strict
  /// order), a slice at a time: what a cache runs over its packs before trusting them.
  public static func checkTable(_ path: String) throws {
    _ = try forEachEntry(path) { _ in }
  }
}

/// A file open for reading, closed when the last reference goes.
private final class OpenFile {
  let fd: Int32
  init(_ path: String) throws { fd = try FileIO.open(path, O_RDONLY, failing: "cannot read") }
  deinit { close(fd) }
}
