import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Packs kept whole in a directory store (`<root>/packs/<sha256>.pack`), as a sync received
/// them: one file per pack instead of one per blob, which is what a cold sync costs on disk.
/// Blobs are found by a binary search of each pack's memory-mapped table, read with `pread`,
/// and verified like any other blob. Removing a blob rewrites its pack without it.
final class PackedObjects: Sendable {
  let dir: String
  /// One pack file: its table mapped into memory (only the table: a blob's bytes are read
  /// with `pread`, so reading a few blobs of a large pack makes only them resident).
  private final class Mapped: @unchecked Sendable {
    let path: String
    let fd: Int32
    let table: UnsafeRawBufferPointer
    let count: Int
    let fileSize: Int
    init?(_ path: String) {
      let fd = FileIO.openRaw(path, O_RDONLY)
      guard fd >= 0 else { return nil }
      var st = stat()
      var head = [UInt8](repeating: 0, count: 12)
      guard fstat(fd, &st) == 0, st.st_size >= 12,
        head.withUnsafeMutableBytes({ FileIO.readRaw(fd, into: $0, at: 0) }) == (12, 0)
      else {
        close(fd)
        return nil
      }
      // The count checked by the one table decoding (magic, `Pack.maxEntries`, file size)
      // before the table's length is worked out from it.
      guard let count = try? PackTable.count(head, fileSize: Int(st.st_size), what: "pack '\(path)'"),
        case let length = PackTable.dataStart(count),
        let m = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED
      else {
        close(fd)
        return nil
      }
      self.path = path
      self.fd = fd
      table = UnsafeRawBufferPointer(start: m, count: length)
      self.count = count
      fileSize = Int(st.st_size)
    }
    /// Entry `i` of the table, decoded and bounds-checked by `PackTable` (nil when it points
    /// outside the pack).
    func entry(_ i: Int) -> PackTable.Entry? {
      let dataStart = PackTable.dataStart(count)
      return try? PackTable.entry(
        table, at: PackTable.headerSize + i * PackTable.entrySize, index: i, dataLength: fileSize - dataStart,
        what: "pack '\(path)'")
    }
    deinit {
      munmap(UnsafeMutableRawPointer(mutating: table.baseAddress), table.count)
      close(fd)
    }
  }
  private struct Loaded: @unchecked Sendable {
    var packs: [Mapped]
  }
  private let state = Mutex<Loaded?>(nil)

  init(root: String) { dir = root + "/packs" }

  private func load() -> [Mapped] {
    state.withLock { s in
      if let s { return s.packs }
      let names = (FileIO.names(in: dir) ?? []).filter { $0.hasSuffix(".pack") }.sorted()
      let packs = names.compactMap { Mapped(dir + "/" + $0) }
      s = Loaded(packs: packs)
      return packs
    }
  }

  func invalidate() { state.withLock { $0 = nil } }

  /// Lookups since the tables' pages were last released.
  private let lookups = Atomic<Int>(0)
  /// How many lookups make the tables' pages be released (when they are large enough to
  /// matter). A lookup faults in a few pages, and the kernel maps 64 KB around each fault,
  /// so 64 lookups between releases let 10 MB of a 100K-recipe table become resident; 16
  /// keep it near 2 MB, for a release (a walk of the mapping's page tables) per 16 lookups.
  static let releaseEvery = 16

  /// Where `id` is: its pack and the blob's byte range in the file.
  private func locate(_ id: ObjectID) -> (Mapped, Range<Int>)? {
    let packs = load()
    if lookups.add(1, ordering: .relaxed).newValue % Self.releaseEvery == 0,
      packs.reduce(0, { $0 + $1.table.count }) > 4 << 20
    {
      release(packs)
    }
    for p in packs {
      guard let i = Self.search(id, in: p), let e = p.entry(i) else { continue }
      let start = PackTable.dataStart(p.count) + e.offset
      return (p, start..<(start + e.size))
    }
    return nil
  }

  /// The position of `id` in a pack's table. Ids are SHA-256 digests, spread evenly, so the
  /// search starts where the id's leading bits say it should be and gallops from there: a
  /// lookup reads a couple of pages of a large table, not one page per halving.
  private static func search(_ id: ObjectID, in p: Mapped) -> Int? {
    guard let base = p.table.baseAddress, p.count > 0 else { return nil }
    let n = p.count
    // Below zero: the table's id at i sorts before the wanted one.
    @inline(__always) func order(_ i: Int) -> Int { -id.compare(toBigEndianAt: base + 12 + i * 44) }
    let guess = min(n - 1, Int((Double(id.w0) / 18_446_744_073_709_551_616.0) * Double(n)))
    var lo = 0
    var hi = n
    let c = order(guess)
    if c == 0 { return guess }
    var step = 8
    if c < 0 {
      lo = guess + 1
      while true {
        let probe = lo + step - 1
        if probe >= n { break }
        let o = order(probe)
        if o == 0 { return probe }
        if o > 0 {
          hi = probe
          break
        }
        lo = probe + 1
        step *= 2
      }
    } else {
      hi = guess
      while true {
        let probe = hi - step
        if probe < 0 { break }
        let o = order(probe)
        if o == 0 { return probe }
        if o < 0 {
          lo = probe + 1
          break
        }
        hi = probe
        step *= 2
      }
    }
    while lo < hi {
      let mid = (lo + hi) / 2
      let o = order(mid)
      if o == 0 { return mid }
      if o < 0 { lo = mid + 1 } else { hi = mid }
    }
    return nil
  }

  func contains(_ id: ObjectID) -> Bool { locate(id) != nil }

  func size(of id: ObjectID) -> Int? { locate(id).map { $0.1.count } }

  /// The raw bytes of a packed blob (the caller verifies them).
  func get(_ id: ObjectID) -> Data? {
    guard let (p, range) = locate(id) else { return nil }
    return read(p, range)
  }

  /// One lookup for the size and the bytes: nil when not packed, `.tooLarge(size)` when the
  /// blob is larger than `maxSize` (nothing read).
  enum Sized {
    case bytes(Data)
    case tooLarge(Int)
    case unreadable
  }

  func get(_ id: ObjectID, maxSize: Int) -> Sized? {
    guard let (p, range) = locate(id) else { return nil }
    if range.count > maxSize { return .tooLarge(range.count) }
    return read(p, range).map { .bytes($0) } ?? .unreadable
  }

  private func read(_ p: Mapped, _ range: Range<Int>) -> Data? {
    // Read straight into the new buffer, without zero-filling it first.
    guard let buf = malloc(max(range.count, 1)) else { return nil }
    let n = FileIO.readRaw(p.fd, into: UnsafeMutableRawBufferPointer(start: buf, count: range.count), at: range.lowerBound)
    guard n == (range.count, 0) else {
      free(buf)
      return nil
    }
    return Data(bytesNoCopy: buf, count: range.count, deallocator: .free)
  }

  /// Every packed blob with its size and its pack's modification time.
  func list() -> [(ObjectID, Int, Int)] {
    var out = [(ObjectID, Int, Int)]()
    for p in load() {
      var st = stat()
      let mtime = stat(p.path, &st) == 0 ? Int(st.st_mtim.tv_sec) : 0
      // An entry pointing outside its pack is left out, as a lookup leaves it out.
      for i in 0..<p.count {
        if let e = p.entry(i) { out.append((e.id, e.size, mtime)) }
      }
    }
    return out
  }

  /// Rewrites the packs holding any of `ids` without them (streamed: `PackFile.rewrite`);
  /// returns the ids that were packed. A pack whose table turns out damaged is set aside
  /// (`quarantine`) instead of stopping the removal: what it held is no longer served.
  func remove(_ ids: Set<ObjectID>) throws -> Set<ObjectID> {
    var removed = Set<ObjectID>()
    for p in load() {
      let rewritten: (path: String?, dropped: [ObjectID])
      do {
        rewritten = try PackFile.rewrite(p.path, dropping: ids, into: dir)
      } catch let e as TsukuError where e.code == .integrity {
        quarantine(p.path, e)
        continue
      }
      let (path, dropped) = rewritten
      if dropped.isEmpty { continue }
      removed.formUnion(dropped)
      if path != p.path { unlink(p.path) }
    }
    invalidate()
    return removed
  }

  // MARK: damaged packs

  /// Where damaged packs are set aside, out of every reader's sight (readers list only
  /// `packs/*.pack`), for a person to look at.
  var damagedDir: String { dir + "/damaged" }
  /// At most this many damaged packs are kept; older ones are deleted.
  static let damagedKept = 4
  private let damaged = Mutex<[DamagedPack]>([])

  /// Checks the table of each pack at `paths` (default: every pack) for its header, bounds
  /// and strict order, and sets aside those that fail; returns them.
  func checkAll(_ paths: [String]? = nil) -> [DamagedPack] {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".pack") }
    let list = paths ?? names.sorted().map { dir + "/" + $0 }
    var found = [DamagedPack]()
    for path in list {
      do { try PackFile.checkTable(path) } catch let e as TsukuError where e.code == .integrity {
        found.append(quarantine(path, e))
      } catch {}
    }
    return found
  }

  /// Moves the damaged pack at `path` to `damaged/` (removes it when it cannot be moved),
  /// forgets the loaded tables, and notes it for `takeDamaged`.
  @discardableResult
  func quarantine(_ path: String, _ error: TsukuError) -> DamagedPack {
    let blobs = PackFile.namedBlobs(path)
    let name = (path as NSString).lastPathComponent
    var movedTo: String? = damagedDir + "/" + name
    if (mkdir(damagedDir, 0o700) != 0 && errno != EEXIST) || rename(path, movedTo!) != 0 {
      unlink(path)
      movedTo = nil
    }
    pruneDamaged()
    invalidate()
    let d = DamagedPack(path: path, movedTo: movedTo, error: error, blobs: blobs)
    damaged.withLock { $0.append(d) }
    return d
  }

  /// The packs set aside since the last call.
  func takeDamaged() -> [DamagedPack] {
    damaged.withLock { list in
      defer { list = [] }
      return list
    }
  }

  /// Keeps the newest `damagedKept` damaged packs.
  private func pruneDamaged() {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: damagedDir)) ?? []
    guard names.count > Self.damagedKept else { return }
    let dated = names.map { n -> (String, Int) in
      var st = stat()
      return (n, stat(damagedDir + "/" + n, &st) == 0 ? Int(st.st_mtim.tv_sec) : 0)
    }.sorted { $0.1 > $1.1 }
    for (n, _) in dated.dropFirst(Self.damagedKept) { unlink(damagedDir + "/" + n) }
  }

  /// Lets the kernel take back the table pages that lookups made resident (they are read
  /// again from the page cache when needed).
  private func release(_ packs: [Mapped]) {
    for p in packs {
      madvise(UnsafeMutableRawPointer(mutating: p.table.baseAddress), p.table.count, MADV_DONTNEED)
    }
  }

  /// The bytes the packs take on disk, without reading their tables.
  func diskBytes() -> Int {
    load().reduce(0) { $0 + $1.fileSize }
  }
}
