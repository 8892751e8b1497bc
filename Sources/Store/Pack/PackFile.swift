import Dispatch
import Foundation
import Synchronization

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
    let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
    defer { close(fd) }
    let fileSize = try FileIO.size(fd, path)
    func bad(_ why: String) -> TsukuError {
      TsukuError(.integrity, "pack '\(path)' is malformed: \(why)", reason: .malformed)
    }
    var head = [UInt8](repeating: 0, count: 12)
    guard fileSize >= 12, try FileIO.read(fd, &head, at: 0, path) == 12, Array(head[0..<8]) == Pack.magic else {
      throw bad("no TSUKUPK1 header")
    }
    let count = head[8..<12].reduce(0) { $0 << 8 | Int($1) }
    guard count <= Pack.maxEntries else { throw bad("\(count) entries") }
    let dataStart = 12 + count * 44
    guard dataStart <= fileSize else { throw bad("table of \(count) entries is longer than the pack") }
    let dataLength = fileSize - dataStart
    // Read a slice at a time: the raw table is as big as the entries (15 MB at 100K recipes).
    var entries = [Entry]()
    entries.reserveCapacity(count)
    var previous: ObjectID?
    let perRead = 1 << 14
    var raw = [UInt8](repeating: 0, count: min(count, perRead) * 44)
    var done = 0
    while done < count {
      let n = min(perRead, count - done)
      guard try FileIO.read(fd, &raw, at: 12 + done * 44, count: n * 44, path) == n * 44 else { throw bad("short table") }
      try raw.withUnsafeBytes { b in
        for j in 0..<n {
          let i = done + j
          let at = j * 44
          let id = ObjectID(bytes: UnsafeRawBufferPointer(rebasing: b[at..<(at + 32)]))
          var offset = 0
          for k in 0..<8 { offset = offset << 8 | Int(b[at + 32 + k]) }
          var size = 0
          for k in 0..<4 { size = size << 8 | Int(b[at + 40 + k]) }
          guard offset >= 0, offset <= dataLength, size <= dataLength - offset else { throw bad("entry \(i) points outside the pack") }
          if let p = previous, !(p < id) { throw bad("table not sorted at entry \(i)") }
          previous = id
          entries.append(Entry(id: id, offset: offset, size: size))
        }
      }
      done += n
    }
    return Table(path: path, entries: entries, dataStart: dataStart, fileSize: fileSize)
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

  /// Merges the packs at `paths` into one new pack in `dir` (the first copy of a blob wins)
  /// and returns its path; the inputs are left in place for the caller to remove. The blob
  /// bytes are copied by the kernel, region by region; only the tables pass through memory.
  /// The new file is fsynced before it is renamed into place.
  public static func merge(_ paths: [String], into dir: String) throws -> String {
    // The merged table, in id order, streamed from the inputs' tables (each sorted) through a
    // k-way merge with a small buffer per input, twice: once to count the distinct ids for the
    // header, once to write. Each input's data region is copied whole, so an entry's new
    // offset is its old one plus where its region lands. Memory: a few megabytes whatever the
    // number of entries (a merged table in memory was 16 MB at a hundred thousand recipes).
    var inputs = [TableRun]()
    var starts = [Int]()
    var total = 0
    for p in paths {
      let h = try header(p)
      inputs.append(TableRun(path: p, what: "pack '\(p)'", tableStart: 12, count: h.count, dataLength: h.fileSize - h.dataStart, base: total))
      starts.append(h.dataStart)
      total += h.fileSize - h.dataStart
    }
    var count = 0
    try mergeTables(inputs) { _, _, _ in count += 1 }
    var head = [UInt8](Pack.magic)
    withUnsafeBytes(of: UInt32(count).bigEndian) { head.append(contentsOf: $0) }
    // Named by the hash of its header and table, which pin every blob it holds.
    var hasher = SHA256()
    head.withUnsafeBytes { hasher.update($0) }
    var table = [UInt8]()
    table.reserveCapacity(1 << 20)
    let file = try AtomicFile(temporary: "\(dir)/.tmp-merge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    defer { file.abandon() }
    do {
      try file.write(head)
      try mergeTables(inputs) { id, offset, size in
        table.append(contentsOf: id.bytes)
        withUnsafeBytes(of: UInt64(offset).bigEndian) { table.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(size).bigEndian) { table.append(contentsOf: $0) }
        if table.count >= 1 << 20 {
          table.withUnsafeBytes { hasher.update($0) }
          try file.write(table)
          table.removeAll(keepingCapacity: true)
        }
      }
      table.withUnsafeBytes { hasher.update($0) }
      try file.write(table)
      table = []
      for (t, start) in zip(inputs, starts) {
        let fd = try FileIO.open(t.path, O_RDONLY, failing: "cannot read")
        defer { close(fd) }
        try copyRange(fd, at: start, count: t.dataLength, to: file, t.path, "merged")
      }
    }
    let path = packPath(hasher.finish(), in: dir)
    try file.commit(as: path)
    return path
  }

  /// Writes the pack at `path` without the blobs in `drop` as a new pack in `dir` (nil when
  /// nothing is left) and returns it with the ids that were dropped; the input is left in
  /// place. Like `merge`, the table is streamed and the kept blobs are copied by the kernel,
  /// so memory does not grow with the pack (an eviction at 100K recipes used to read a 3.3 GB
  /// pack whole).
  public static func rewrite(_ path: String, dropping drop: Set<ObjectID>, into dir: String) throws -> (path: String?, dropped: [ObjectID]) {
    let h = try header(path)
    let input = [TableRun(path: path, what: "pack '\(path)'", tableStart: 12, count: h.count, dataLength: h.fileSize - h.dataStart, base: 0)]
    var count = 0
    var dropped = [ObjectID]()
    try mergeTables(input) { id, _, _ in
      if drop.contains(id) { dropped.append(id) } else { count += 1 }
    }
    if dropped.isEmpty { return (path, []) }
    if count == 0 { return (nil, dropped) }
    var head = [UInt8](Pack.magic)
    withUnsafeBytes(of: UInt32(count).bigEndian) { head.append(contentsOf: $0) }
    var hasher = SHA256()
    head.withUnsafeBytes { hasher.update($0) }
    let file = try AtomicFile(temporary: "\(dir)/.tmp-rewrite-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    defer { file.abandon() }
    do {
      let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
      defer { close(fd) }
      try file.write(head)
      // The kept blobs are laid out in table order: the table first (offsets known as it
      // goes), then the same walk copies the bytes.
      var table = [UInt8]()
      table.reserveCapacity(1 << 20)
      var at = 0
      try mergeTables(input) { id, offset, size in
        if drop.contains(id) { return }
        table.append(contentsOf: id.bytes)
        withUnsafeBytes(of: UInt64(at).bigEndian) { table.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(size).bigEndian) { table.append(contentsOf: $0) }
        at += size
        if table.count >= 1 << 20 {
          table.withUnsafeBytes { hasher.update($0) }
          try file.write(table)
          table.removeAll(keepingCapacity: true)
        }
      }
      table.withUnsafeBytes { hasher.update($0) }
      try file.write(table)
      try mergeTables(input) { id, offset, size in
        if drop.contains(id) { return }
        try copyRange(fd, at: h.dataStart + offset, count: size, to: file, path, "rewritten")
      }
    }
    let newPath = packPath(hasher.finish(), in: dir)
    try file.commit(as: newPath)
    return (newPath, dropped)
  }

  /// A pack's header: entry count, where its data starts, its size (checked like `table`).
  static func header(_ path: String) throws -> (count: Int, dataStart: Int, fileSize: Int) {
    let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
    defer { close(fd) }
    let fileSize = try FileIO.size(fd, path)
    var head = [UInt8](repeating: 0, count: 12)
    guard fileSize >= 12, try FileIO.read(fd, &head, at: 0, path) == 12, Array(head[0..<8]) == Pack.magic else {
      throw TsukuError(.integrity, "pack '\(path)' is malformed: no TSUKUPK1 header", reason: .malformed)
    }
    let count = head[8..<12].reduce(0) { $0 << 8 | Int($1) }
    guard count <= Pack.maxEntries, 12 + count * 44 <= fileSize else {
      throw TsukuError(.integrity, "pack '\(path)' is malformed: table of \(count) entries", reason: .malformed)
    }
    return (count, 12 + count * 44, fileSize)
  }

  /// A sorted table of `count` entries at `tableStart` in the file at `path`, for the blobs of
  /// a data region of `dataLength` bytes that lands at `base` in the merged data region;
  /// `what` names the pack in messages.
  struct TableRun {
    var path: String
    var what: String
    var tableStart: Int
    var count: Int
    var dataLength: Int
    var base: Int
  }

  /// One input table read a slice at a time, checked as it goes (bounds, strict order).
  private struct TableCursor {
    let fd: Int32
    let path: String
    let what: String
    let tableStart: Int
    let count: Int
    let dataLength: Int
    let base: Int
    var next = 0
    var buffer: [UInt8]
    var bufferStart = 0
    var bufferCount = 0
    var current: Entry?

    init(_ run: TableRun) throws {
      self.fd = try FileIO.open(run.path, O_RDONLY, failing: "cannot read")
      self.path = run.path
      self.what = run.what
      self.tableStart = run.tableStart
      self.count = run.count
      self.dataLength = run.dataLength
      self.base = run.base
      self.buffer = [UInt8](repeating: 0, count: 256 * 44)
    }

    /// Moves to the next entry (nil at the end).
    mutating func advance() throws {
      if next >= count {
        current = nil
        return
      }
      if next >= bufferStart + bufferCount {
        let n = min(256, count - next)
        guard try FileIO.read(fd, &buffer, at: tableStart + next * 44, count: n * 44, path) == n * 44 else {
          throw TsukuError(.integrity, "\(what) is malformed: short table", reason: .malformed)
        }
        (bufferStart, bufferCount) = (next, n)
      }
      let at = (next - bufferStart) * 44
      let e = buffer.withUnsafeBytes { b in
        var offset = 0
        for k in 0..<8 { offset = offset << 8 | Int(b[at + 32 + k]) }
        var size = 0
        for k in 0..<4 { size = size << 8 | Int(b[at + 40 + k]) }
        return Entry(id: ObjectID(bytes: UnsafeRawBufferPointer(rebasing: b[at..<(at + 32)])), offset: offset, size: size)
      }
      guard e.offset <= dataLength, e.size <= dataLength - e.offset else {
        throw TsukuError(.integrity, "\(what) is malformed: entry \(next) points outside the pack", reason: .malformed)
      }
      if let p = current, !(p.id < e.id) {
        throw TsukuError(.integrity, "\(what) is malformed: table not sorted at entry \(next)", reason: .malformed)
      }
      current = e
      next += 1
    }
  }

  /// Visits the distinct ids of the inputs' tables in order, with their offsets in the merged
  /// data region (the first input holding an id wins).
  static func mergeTables(_ inputs: [TableRun], _ visit: (ObjectID, Int, Int) throws -> Void) throws {
    var cursors = [TableCursor]()
    defer { for c in cursors { close(c.fd) } }
    for i in inputs {
      cursors.append(try TableCursor(i))
      try cursors[cursors.count - 1].advance()
    }
    // A binary min-heap of cursor positions, ordered by (current id, input position).
    func less(_ a: Int, _ b: Int) -> Bool {
      let x = cursors[a].current!.id
      let y = cursors[b].current!.id
      return x < y || (x == y && a < b)
    }
    var heap = cursors.indices.filter { cursors[$0].current != nil }
    func down(_ from: Int) {
      var i = from
      while true {
        let l = 2 * i + 1
        if l >= heap.count { return }
        var m = l
        if l + 1 < heap.count, less(heap[l + 1], heap[l]) { m = l + 1 }
        if !less(heap[m], heap[i]) { return }
        heap.swapAt(i, m)
        i = m
      }
    }
    for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { down(i) }
    var last: ObjectID?
    while let top = heap.first {
      let e = cursors[top].current!
      if last != e.id {
        try visit(e.id, cursors[top].base + e.offset, e.size)
        last = e.id
      }
      try cursors[top].advance()
      if cursors[top].current == nil {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
      }
      down(0)
    }
  }

  /// Copies `count` bytes of `fd` from `offset` to the end of `out` through the kernel
  /// (`copy_file_range`), reading and writing where it cannot; `what` names the operation in
  /// the error when the input shrinks.
  private static func copyRange(
    _ fd: Int32, at offset: Int, count: Int, to out: AtomicFile, _ path: String, _ what: String
  ) throws {
    var inOff = off_t(offset)
    var left = count
    while left > 0 {
      let n = copyFileRange(fd, &inOff, out.fd, nil, left, 0)
      if n < 0 {
        if errno == EINTR { continue }
        if errno == EXDEV || errno == ENOSYS || errno == EINVAL {
          try copyByReading(fd, Int(inOff), left, to: out, path)
          return
        }
        throw TsukuError.io("cannot copy", path, errno: errno)
      }
      if n == 0 { throw TsukuError(.other, "pack '\(path)' shrank while it was \(what)") }
      left -= n
    }
  }

  /// Where the pack named `name` (the hash of its header and table) lives in `dir`.
  static func packPath(_ name: ObjectID, in dir: String) -> String { dir + "/" + name.hex + ".pack" }

  private static func copyByReading(_ fd: Int32, _ at: Int, _ count: Int, to out: AtomicFile, _ path: String) throws {
    var buffer = [UInt8](repeating: 0, count: min(count, 4 << 20))
    var done = 0
    while done < count {
      let want = min(buffer.count, count - done)
      let n = try FileIO.read(fd, &buffer, at: at + done, count: want, path)
      if n < want { throw TsukuError(.other, "pack '\(path)' shrank while it was merged") }
      try buffer.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[0..<want])) }
      done += want
    }
  }
}

/// A file open for reading, closed when the last reference goes.
private final class OpenFile {
  let fd: Int32
  init(_ path: String) throws { fd = try FileIO.open(path, O_RDONLY, failing: "cannot read") }
  deinit { close(fd) }
}

#if os(Linux)
  // glibc declares copy_file_range only under _GNU_SOURCE, which the Glibc module does not set.
  @_silgen_name("copy_file_range")
  private func copyFileRange(
    _ fdIn: Int32, _ offIn: UnsafeMutablePointer<off_t>?, _ fdOut: Int32, _ offOut: UnsafeMutablePointer<off_t>?,
    _ length: Int, _ flags: UInt32
  ) -> Int
#endif
