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
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw TsukuError.io("cannot read", path, errno: errno) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw TsukuError.io("cannot stat", path, errno: errno) }
    let fileSize = Int(st.st_size)
    func bad(_ why: String) -> TsukuError { TsukuError(.integrity, "pack '\(path)' is malformed: \(why)") }
    var head = [UInt8](repeating: 0, count: 12)
    guard fileSize >= 12, try readFully(fd, &head, at: 0, path) == 12, Array(head[0..<8]) == Pack.magic else {
      throw bad("no TSUKUPK1 header")
    }
    let count = head[8..<12].reduce(0) { $0 << 8 | Int($1) }
    guard count <= Pack.maxEntries else { throw bad("\(count) entries") }
    let dataStart = 12 + count * 44
    guard dataStart <= fileSize else { throw bad("table of \(count) entries is longer than the pack") }
    let dataLength = fileSize - dataStart
    var raw = [UInt8](repeating: 0, count: count * 44)
    guard try readFully(fd, &raw, at: 12, path) == raw.count else { throw bad("short table") }
    var entries = [Entry]()
    entries.reserveCapacity(count)
    var previous: ObjectID?
    try raw.withUnsafeBytes { b in
      for i in 0..<count {
        let at = i * 44
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
    return Table(path: path, entries: entries, dataStart: dataStart, fileSize: fileSize)
  }

  /// Re-hashes every blob of the pack at `path` on all cores, reading it in bounded chunks.
  /// Returns the ids of the blobs whose bytes do not hash to their names, and the bytes read.
  public static func verify(_ path: String, chunk: Int = 4 << 20) throws -> (corrupt: [ObjectID], blobs: Int, bytes: Int) {
    // The table's entries, taken so that sorting them sorts in place (a copy would be 16 MB at
    // a hundred thousand recipes).
    func take() throws -> (Int, [Entry]) {
      let t = try table(path)
      return (t.dataStart, t.entries)
    }
    let dataStart: Int
    var entries: [Entry]
    (dataStart, entries) = try take()
    // Entries in file order, cut into runs of about `chunk` bytes: each run is one read.
    entries.sort { $0.offset < $1.offset }
    let ordered = entries
    var cut = [Range<Int>]()
    var start = 0
    while start < ordered.count {
      var end = start
      let first = ordered[start].offset
      while end < ordered.count, end == start || ordered[end].offset + ordered[end].size - first <= chunk { end += 1 }
      cut.append(start..<end)
      start = end
    }
    let runs = cut
    let corrupt = Mutex([ObjectID]())
    let failure = Mutex<TsukuError?>(nil)
    let workers = min(max(1, ProcessInfo.processInfo.activeProcessorCount), max(1, runs.count))
    let next = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      if fd < 0 {
        failure.withLock { $0 = TsukuError.io("cannot read", path, errno: errno) }
        return
      }
      defer { close(fd) }
      var buffer = [UInt8](repeating: 0, count: chunk)
      var bad = [ObjectID]()
      while true {
        let r = next.add(1, ordering: .relaxed).oldValue
        if r >= runs.count { break }
        let run = runs[r]
        let from = ordered[run.lowerBound].offset
        let to = run.map { ordered[$0].offset + ordered[$0].size }.max()!
        if to - from > buffer.count { buffer = [UInt8](repeating: 0, count: to - from) }
        do {
          guard try readFully(fd, &buffer, at: dataStart + from, path, count: to - from) == to - from else {
            throw TsukuError(.integrity, "pack '\(path)' is truncated")
          }
        } catch let e as TsukuError {
          failure.withLock { $0 = e }
          return
        } catch { return }
        buffer.withUnsafeBytes { b in
          for i in run {
            let e = ordered[i]
            let o = e.offset - from
            if SHA256.hash(UnsafeRawBufferPointer(rebasing: b[o..<(o + e.size)])) != e.id { bad.append(e.id) }
          }
        }
      }
      if !bad.isEmpty { corrupt.withLock { $0 += bad } }
    }
    if let e = failure.withLock({ $0 }) { throw e }
    return (corrupt.withLock { $0 }.sorted(), ordered.count, ordered.reduce(0) { $0 + $1.size })
  }

  /// Merges the packs at `paths` into one new pack in `dir` (the first copy of a blob wins)
  /// and returns its path; the inputs are left in place for the caller to remove. The blob
  /// bytes are copied by the kernel, region by region; only the tables pass through memory.
  /// The new file is fsynced before it is renamed into place.
  public static func merge(_ paths: [String], into dir: String) throws -> String {
    // The merged table, in id order; each input's data region is copied whole, so an entry's
    // new offset is its old one plus where its region lands. Tables are read one at a time.
    var inputs = [(path: String, dataStart: Int, fileSize: Int)]()
    var merged = [(ObjectID, Int, Int)]()
    var total = 0
    for p in paths {
      let t = try table(p)
      merged.reserveCapacity(merged.count + t.entries.count)
      for e in t.entries { merged.append((e.id, total + e.offset, e.size)) }
      inputs.append((t.path, t.dataStart, t.fileSize))
      total += t.fileSize - t.dataStart
    }
    merged.sort { $0.0 < $1.0 }
    var count = 0
    for i in merged.indices where i == 0 || merged[i - 1].0 != merged[i].0 { count += 1 }
    var head = [UInt8](Pack.magic)
    withUnsafeBytes(of: UInt32(count).bigEndian) { head.append(contentsOf: $0) }
    // Named by the hash of its header and table, which pin every blob it holds.
    var hasher = SHA256()
    head.withUnsafeBytes { hasher.update($0) }
    var table = [UInt8]()
    table.reserveCapacity(1 << 20)
    let tmp = "\(dir)/.tmp-merge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if out < 0 { throw TsukuError.io("cannot write", tmp, errno: errno) }
    var ok = false
    defer {
      if !ok { unlink(tmp) }
    }
    do {
      defer { close(out) }
      try writeFully(out, head, tmp)
      for i in merged.indices where i == 0 || merged[i - 1].0 != merged[i].0 {
        let (id, offset, size) = merged[i]
        table.append(contentsOf: id.bytes)
        withUnsafeBytes(of: UInt64(offset).bigEndian) { table.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(size).bigEndian) { table.append(contentsOf: $0) }
        if table.count >= 1 << 20 {
          table.withUnsafeBytes { hasher.update($0) }
          try writeFully(out, table, tmp)
          table.removeAll(keepingCapacity: true)
        }
      }
      table.withUnsafeBytes { hasher.update($0) }
      try writeFully(out, table, tmp)
      table = []
      merged = []
      for t in inputs {
        let fd = open(t.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw TsukuError.io("cannot read", t.path, errno: errno) }
        defer { close(fd) }
        var inOff = off_t(t.dataStart)
        var left = t.fileSize - t.dataStart
        while left > 0 {
          let n = copyFileRange(fd, &inOff, out, nil, left, 0)
          if n < 0 {
            if errno == EINTR { continue }
            if errno == EXDEV || errno == ENOSYS || errno == EINVAL {
              try copyByReading(fd, Int(inOff), left, to: out, t.path, tmp)
              break
            }
            throw TsukuError.io("cannot copy", t.path, errno: errno)
          }
          if n == 0 { throw TsukuError(.other, "pack '\(t.path)' shrank while it was merged") }
          left -= n
        }
      }
      if fsync(out) != 0 { throw TsukuError.io("cannot sync", tmp, errno: errno) }
    }
    let path = dir + "/" + hasher.finish().hex + ".pack"
    if rename(tmp, path) != 0 { throw TsukuError.io("cannot rename into", path, errno: errno) }
    ok = true
    let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
      fsync(dfd)
      close(dfd)
    }
    return path
  }

  private static func copyByReading(_ fd: Int32, _ at: Int, _ count: Int, to out: Int32, _ path: String, _ tmp: String) throws {
    var buffer = [UInt8](repeating: 0, count: min(count, 4 << 20))
    var done = 0
    while done < count {
      let want = min(buffer.count, count - done)
      let n = try readFully(fd, &buffer, at: at + done, path, count: want)
      if n < want { throw TsukuError(.other, "pack '\(path)' shrank while it was merged") }
      try buffer.withUnsafeBytes { try writeFully(out, UnsafeRawBufferPointer(rebasing: $0[0..<want]), tmp) }
      done += want
    }
  }

  @discardableResult
  static func readFully(_ fd: Int32, _ buffer: inout [UInt8], at offset: Int, _ path: String, count: Int? = nil) throws -> Int {
    let want = count ?? buffer.count
    var got = 0
    try buffer.withUnsafeMutableBytes { b in
      while got < want {
        let n = pread(fd, b.baseAddress! + got, want - got, off_t(offset + got))
        if n < 0 {
          if errno == EINTR { continue }
          throw TsukuError.io("cannot read", path, errno: errno)
        }
        if n == 0 { break }
        got += n
      }
    }
    return got
  }

  static func writeFully(_ fd: Int32, _ bytes: [UInt8], _ path: String) throws {
    try bytes.withUnsafeBytes { try writeFully(fd, $0, path) }
  }

  /// Writes all of `b` to `fd`, retrying short writes and EINTR; `path` names it in errors.
  static func writeFully(_ fd: Int32, _ b: UnsafeRawBufferPointer, _ path: String) throws {
    var off = 0
    while off < b.count {
      let n = write(fd, b.baseAddress! + off, b.count - off)
      if n < 0 {
        if errno == EINTR { continue }
        throw TsukuError.io("cannot write", path, errno: errno)
      }
      off += n
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
