import Foundation

#if canImport(Glibc)
  import Glibc
#endif

extension PackFile {
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
    let file = try AtomicFile(temporary: "\(dir)/.tmp-merge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    defer { file.abandon() }
    let name: ObjectID
    do {
      let table = try TableWriter(file, count: count)
      try mergeTables(inputs) { id, offset, size in try table.append(id, offset: offset, size: size) }
      name = try table.finish()
      for (t, start) in zip(inputs, starts) {
        let fd = try FileIO.open(t.path, O_RDONLY, failing: "cannot read")
        defer { close(fd) }
        try copyRange(fd, at: start, count: t.dataLength, to: file, t.path, "merged")
      }
    }
    let path = packPath(name, in: dir)
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
    let file = try AtomicFile(temporary: "\(dir)/.tmp-rewrite-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    defer { file.abandon() }
    let name: ObjectID
    do {
      let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
      defer { close(fd) }
      // The kept blobs are laid out in table order: the table first (offsets known as it
      // goes), then the same walk copies the bytes.
      let table = try TableWriter(file, count: count)
      var at = 0
      try mergeTables(input) { id, offset, size in
        if drop.contains(id) { return }
        try table.append(id, offset: at, size: size)
        at += size
      }
      name = try table.finish()
      try mergeTables(input) { id, offset, size in
        if drop.contains(id) { return }
        try copyRange(fd, at: h.dataStart + offset, count: size, to: file, path, "rewritten")
      }
    }
    let newPath = packPath(name, in: dir)
    try file.commit(as: newPath)
    return (newPath, dropped)
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

#if os(Linux)
  // glibc declares copy_file_range only under _GNU_SOURCE, which the Glibc module does not set.
  @_silgen_name("copy_file_range")
  private func copyFileRange(
    _ fdIn: Int32, _ offIn: UnsafeMutablePointer<off_t>?, _ fdOut: Int32, _ offOut: UnsafeMutablePointer<off_t>?,
    _ length: Int, _ flags: UInt32
  ) -> Int
#endif

/// A pack's header and table written to a new pack file as the table is produced, a megabyte
/// at a time, and hashed on the way: a pack is named by the hash of its header and table,
/// which pin every blob it holds.
private final class TableWriter {
  private let file: AtomicFile
  private var hasher: SHA256? = SHA256()
  private var table = [UInt8]()

  /// Writes the header of a pack of `count` blobs.
  init(_ file: AtomicFile, count: Int) throws {
    self.file = file
    var head = [UInt8](Pack.magic)
    withUnsafeBytes(of: UInt32(count).bigEndian) { head.append(contentsOf: $0) }
    head.withUnsafeBytes { hasher!.update($0) }
    try file.write(head)
    table.reserveCapacity(1 << 20)
  }

  /// One table entry: the blob's id, its offset in the data section and its size.
  func append(_ id: ObjectID, offset: Int, size: Int) throws {
    table.append(contentsOf: id.bytes)
    withUnsafeBytes(of: UInt64(offset).bigEndian) { table.append(contentsOf: $0) }
    withUnsafeBytes(of: UInt32(size).bigEndian) { table.append(contentsOf: $0) }
    if table.count >= 1 << 20 { try flush() }
  }

  /// Writes the rest of the table; the pack's name.
  func finish() throws -> ObjectID {
    try flush()
    table = []
    return hasher.take()!.finish()
  }

  private func flush() throws {
    table.withUnsafeBytes { hasher!.update($0) }
    try file.write(table)
    table.removeAll(keepingCapacity: true)
  }
}
