import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Hashes a body on its way to another sink: how a remote store verifies a blob it streams.
final class HashingSink: BodySink, @unchecked Sendable {
  // Safe: a transfer's sink is called from one thread at a time, and `digest` after it ends.
  private let inner: any BodySink
  private var hasher: SHA256? = SHA256()

  init(_ inner: any BodySink) { self.inner = inner }

  func restart() {
    hasher = SHA256()
    inner.restart()
  }

  func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
    hasher!.update(bytes)
    return inner.write(bytes)
  }

  var refusal: TsukuError? { inner.refusal }

  /// The SHA-256 of the bytes written since the last restart.
  func digest() -> ObjectID {
    let h = hasher.take()!
    hasher = SHA256()
    return h.finish()
  }
}

/// The packs of a cold sync written once, each straight into its place in one merged pack as
/// its bytes arrive, instead of being held in memory, written as packs of their own and then
/// copied into a merged one (at 100K recipes that was 3.3 GB written twice, past the kernel's
/// dirty-page limit, so the second write ran at the disk's speed).
///
/// The signed index gives each pack's size and entry count, so every region is known before a
/// byte arrives: the merged table (12 + N × 44 bytes for the N entries of all packs) first,
/// then each pack's data at the sum of the data sizes before it. A pack's own table goes to a
/// side file as it arrives. While other packs download, a finished pack's blobs are hashed on
/// another thread (from the page cache, a mapping of its region) and its region's writeback
/// starts. `commit` merges the side tables into the merged one (a k-way merge through small
/// buffers, as `PackFile.merge` does), fsyncs once and renames the pack into place.
///
/// A blob present in two packs is kept once: the table is then shorter than the room left for
/// it, and the gap becomes unused bytes at the start of the data region (offsets count from the
/// end of the table). A pack that does not arrive leaves an unused hole.
public final class PackAssembly: @unchecked Sendable {
  // Safe: the sinks write disjoint regions through pwrite; shared state is behind `state`.
  public struct Part: Sendable {
    public var id: ObjectID
    public var size: Int
    public var count: Int
    public init(id: ObjectID, size: Int, count: Int) {
      self.id = id
      self.size = size
      self.count = count
    }
    var dataStart: Int { 12 + count * 44 }
    var dataLength: Int { size - dataStart }
  }

  public let parts: [Part]
  /// How much of a part's mapping is hashed before its pages are released.
  static let releaseBytes = 2 << 20
  let dir: String
  /// The merged pack, under its temporary name until `commit`.
  let file: AtomicFile
  var tmp: String { file.temporary }
  var out: Int32 { file.fd }
  let tablesPath: String
  let tables: Int32
  /// Where the data region starts in the merged file before duplicates are dropped.
  let dataStart: Int
  /// Each part's data offset within the merged data region, and its first table slot.
  let dataBase: [Int]
  let tableBase: [Int]
  private let describe: @Sendable (Part) -> String
  private var sinks = [PartSink]()
  private let checker = DispatchQueue(label: "tsuku.pack-assembly.check")
  private let checks = DispatchGroup()
  private let state = Mutex(State())
  private var closed = false
  private let stopped = Atomic<Bool>(false)

  /// For each part, the outcome of its last check, with the completion it checked (how many
  /// times its last byte had arrived): a check of bytes a retry since replaced does not count.
  private struct State {
    var checked: [Int: (completion: Int, failure: TsukuError?)] = [:]
  }

  /// Prepares the merged file in `dir` for `parts`; `describe` names a part in messages
  /// (`pack 'ab12…' from 's3://…'`).
  public init(parts: [Part], in dir: String, describe: @escaping @Sendable (Part) -> String) throws {
    var total = 0
    var data = 0
    var dataBase = [Int]()
    var tableBase = [Int]()
    for p in parts {
      guard p.count >= 0, p.count <= Pack.maxEntries, p.size >= p.dataStart else {
        throw TsukuError(
          .integrity, "\(describe(p)) is declared as \(p.size) bytes holding \(p.count) blobs, too small for its own table",
          reason: .malformed)
      }
      tableBase.append(total)
      dataBase.append(data)
      total += p.count  // each count at most maxEntries: no overflow
      let (sum, overflow) = data.addingReportingOverflow(p.dataLength)
      // Half the range at most: the merged table and the file offsets are added to it.
      guard !overflow, sum <= Int.max / 2 else {
        throw TsukuError(
          .integrity, "the packs declare more data than a pack may hold (\(describe(p)))", reason: .malformed)
      }
      data = sum
    }
    guard total <= Pack.maxEntries else {
      throw TsukuError(
        .integrity, "the packs declare \(total) blobs, more than the \(Pack.maxEntries) a pack may hold", reason: .malformed)
    }
    self.parts = parts
    self.dir = dir
    self.dataBase = dataBase
    self.tableBase = tableBase
    self.dataStart = 12 + total * 44
    self.describe = describe
    let tag = "\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    file = try AtomicFile(temporary: "\(dir)/.tmp-assemble-\(tag)", flags: O_RDWR)
    tablesPath = "\(dir)/.tmp-assemble-tables-\(tag)"
    tables = FileIO.openRaw(tablesPath, O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
    if tables < 0 {
      let e = errno
      file.abandon()
      throw TsukuError.io("cannot write", tablesPath, errno: e)
    }
    if ftruncate(out, off_t(dataStart + data)) != 0 {
      let e = errno
      abandon()
      throw TsukuError.io("cannot size", tmp, errno: e)
    }
    sinks = parts.indices.map { PartSink(self, $0) }
  }

  deinit { abandon() }

  /// The sink for part `i`: hand it to `ObjectReader.fetch(into:)`.
  public func sink(_ i: Int) -> any BodySink { sinks[i] }

  /// Removes the temporary files (after a failure; `commit` leaves nothing behind either way).
  public func abandon() {
    if closed { return }
    // Checks still queued are skipped; one running ends before the files close.
    stopped.store(true, ordering: .relaxed)
    checks.wait()
    closed = true
    file.abandon()
    close(tables)
    unlink(tablesPath)
  }

  /// Called from a sink when part `i`'s last byte arrived: its blobs are checked on the
  /// checking thread while other parts download.
  fileprivate func completed(_ i: Int, completion: Int) {
    checks.enter()
    checker.async { [self] in
      defer { checks.leave() }
      if stopped.load(ordering: .relaxed) { return }
      var failure: TsukuError?
      do { try check(i) } catch let e as TsukuError { failure = e } catch { failure = TsukuError(.other, "\(error)") }
      state.withLock { $0.checked[i] = (completion, failure) }
    }
  }

  /// Part `i`'s table as written to the side file, for its blobs in the merged data region.
  private func run(_ i: Int) -> PackFile.TableRun {
    let p = parts[i]
    return PackFile.TableRun(
      path: tablesPath, what: describe(p), tableStart: tableBase[i] * 44, count: p.count, dataLength: p.dataLength,
      base: dataBase[i])
  }

  /// Checks part `i` as written: its table in order and in bounds, and every blob hashing to
  /// its id. Then starts the writeback of its data (the one fsync at the end waits for less).
  private func check(_ i: Int) throws {
    let p = parts[i]
    let what = describe(p)
    // The table read through the merge's cursor, which decodes it with `PackTable` (every
    // offset and size inside the part's data region, strict order) before any byte of the
    // data is read: the part's own hash is compared only once the whole transfer ends.
    var entries = [(offset: Int, size: Int, id: ObjectID)]()
    entries.reserveCapacity(p.count)
    try PackFile.mergeTables([run(i)]) { id, offset, size in entries.append((offset - dataBase[i], size, id)) }
    if p.dataLength == 0 { return }
    let at = dataStart + dataBase[i]
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = at / page * page
    let length = at + p.dataLength - start
    guard let map = mmap(nil, length, PROT_READ, MAP_SHARED, out, off_t(start)), map != MAP_FAILED else {
      throw TsukuError.io("cannot map", tmp, errno: errno)
    }
    defer {
      madvise(map, length, MADV_DONTNEED)
      munmap(map, length)
    }
    let data = UnsafeRawPointer(map) + (at - start)
    // The blobs hashed in the order they lie, the pages behind released every few megabytes,
    // so the mapping adds little to the resident set.
    entries.sort { $0.offset < $1.offset }
    var released = 0
    for e in entries {
      // The table decoding placed the blob inside the part's data; checked again here, where
      // the pointer is formed, because the mapping covers nothing else.
      guard e.offset >= 0, e.size >= 0, e.offset <= p.dataLength, e.size <= p.dataLength - e.offset else {
        throw PackTable.malformed(what, "blob '\(e.id.hex)' lies outside the pack")
      }
      if SHA256.hash(UnsafeRawBufferPointer(start: data + e.offset, count: e.size)) != e.id {
        throw TsukuError(.integrity, "\(what) holds a corrupt blob '\(e.id.hex)'", reason: .malformed)
      }
      let done = (at - start + e.offset) / page * page
      if done - released >= Self.releaseBytes {
        madvise(map + released, done - released, MADV_DONTNEED)
        released = done
      }
    }
    _ = syncFileRange(out, off_t(at), off_t(p.dataLength), 2)  // SYNC_FILE_RANGE_WRITE
  }

  /// What `commit` made: the merged pack (nil when no part arrived) and its distinct blobs.
  public struct Outcome: Sendable {
    public var path: String?
    public var blobs: Int
  }

  /// Finishes the merged pack from the parts that arrived (`arrived[i]`: part i was fetched
  /// whole and its hash checked): waits for their checks, writes the merged table, fsyncs and
  /// renames the pack into `dir` under the hash of its header and table.
  public func commit(arrived: [Bool]) throws -> Outcome {
    defer { abandon() }
    checks.wait()
    let checked = state.withLock { $0.checked }
    var runs = [PackFile.TableRun]()
    for (i, p) in parts.enumerated() where arrived[i] {
      if sinks[i].position != p.size {
        throw TsukuError(
          .integrity, "\(describe(p)) is \(sinks[i].position) bytes; its index entry says \(p.size)", reason: .malformed)
      }
      if let c = checked[i], c.completion == sinks[i].completions {
        if let e = c.failure { throw e }
      } else {
        try check(i)  // its bytes came again after the check (a retry), or it was not checked
      }
      runs.append(run(i))
    }
    if runs.isEmpty { return Outcome(path: nil, blobs: 0) }
    var count = 0
    try PackFile.mergeTables(runs) { _, _, _ in count += 1 }
    // Offsets count from the end of the (possibly shorter) table.
    let shift = dataStart - (12 + count * 44)
    var head = [UInt8](Pack.magic)
    withUnsafeBytes(of: UInt32(count).bigEndian) { head.append(contentsOf: $0) }
    var hasher: SHA256? = SHA256()
    head.withUnsafeBytes { hasher!.update($0) }
    var table = [UInt8]()
    table.reserveCapacity(1 << 20)
    var at = 12
    func flush() throws {
      table.withUnsafeBytes { hasher!.update($0) }
      try file.write(table, at: at)
      at += table.count
      table.removeAll(keepingCapacity: true)
    }
    try file.write(head, at: 0)
    try PackFile.mergeTables(runs) { id, offset, size in
      table.append(contentsOf: id.bytes)
      withUnsafeBytes(of: UInt64(offset + shift).bigEndian) { table.append(contentsOf: $0) }
      withUnsafeBytes(of: UInt32(size).bigEndian) { table.append(contentsOf: $0) }
      if table.count >= 1 << 20 { try flush() }
    }
    try flush()
    let path = PackFile.packPath(hasher.take()!.finish(), in: dir)
    try file.commit(as: path)
    return Outcome(path: path, blobs: count)
  }

  /// Places the bytes of one part as they arrive: its header checked against the index, its
  /// table into the side file, its data into the merged file.
  fileprivate final class PartSink: BodySink, @unchecked Sendable {
    // Safe: one transfer writes to it at a time; `completions` is read after the transfers end.
    unowned let assembly: PackAssembly
    let index: Int
    let part: Part
    var position = 0
    var head = [UInt8]()
    var completions = 0
    private var why: TsukuError?

    init(_ assembly: PackAssembly, _ index: Int) {
      self.assembly = assembly
      self.index = index
      self.part = assembly.parts[index]
    }

    var refusal: TsukuError? { why }

    func restart() {
      position = 0
      head = []
      why = nil
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
      var b = bytes
      if position + b.count > part.size {
        return refuse(
          TsukuError(
            .integrity, "\(assembly.describe(part)) is longer than the \(part.size) bytes its index entry says",
            reason: .malformed))
      }
      if position < 12 {
        let n = min(12 - position, b.count)
        head += b[0..<n]
        position += n
        b = UnsafeRawBufferPointer(rebasing: b[n...])
        if position == 12 {
          let count = head[8..<12].reduce(0) { $0 << 8 | Int($1) }
          if Array(head[0..<8]) != Pack.magic {
            return refuse(
              TsukuError(.integrity, "\(assembly.describe(part)) is malformed: no TSUKUPK1 header", reason: .malformed))
          }
          if count != part.count {
            return refuse(
              TsukuError(
                .integrity, "\(assembly.describe(part)) holds \(count) blobs; its index entry says \(part.count)",
                reason: .malformed))
          }
        }
      }
      do {
        if !b.isEmpty && position < part.dataStart {
          let n = min(part.dataStart - position, b.count)
          let at = assembly.tableBase[index] * 44 + (position - 12)
          try FileIO.write(assembly.tables, UnsafeRawBufferPointer(rebasing: b[0..<n]), at: at, assembly.tablesPath)
          position += n
          b = UnsafeRawBufferPointer(rebasing: b[n...])
        }
        if !b.isEmpty {
          let at = assembly.dataStart + assembly.dataBase[index] + (position - part.dataStart)
          try assembly.file.write(b, at: at)
          position += b.count
        }
      } catch let e as TsukuError {
        return refuse(e)
      } catch {
        return refuse(TsukuError(.other, "\(error)"))
      }
      if position == part.size {
        completions += 1
        assembly.completed(index, completion: completions)
      }
      return true
    }

    private func refuse(_ e: TsukuError) -> Bool {
      why = e
      return false
    }
  }
}

#if os(Linux)
  // glibc declares sync_file_range only under _GNU_SOURCE, which the Glibc module does not set.
  @_silgen_name("sync_file_range")
  private func syncFileRange(_ fd: Int32, _ offset: off_t, _ nbytes: off_t, _ flags: UInt32) -> Int32
#endif
