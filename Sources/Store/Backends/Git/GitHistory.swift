// The history map of the git backend: which git blob (and which commit) holds each sha256
// blob in a window of a repository's history. No libgit2 here: GitStore.swift walks the
// commits and fills a `GitHistoryMap.Builder`; this file sorts, encodes, caches and searches.
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A sorted, immutable map from a blob's SHA-256 to the git blobs that held it at
/// `objects/sha256/<fan>/<hex>` in the commits of a history window, each with the newest
/// commit that had it. One name can have several git blobs (a careless or malicious commit
/// put other bytes at that path): every one is a candidate, tried newest first, and only one
/// whose bytes hash to the name is ever served.
///
/// Encoded form (also the cache file), all integers big-endian:
/// ```
///  0   8  magic "TSKHIST2"
///  8  20  the tip commit the map was built from
/// 28   8  the newest commit time in the window (seconds since 1970)
/// 36   4  the window in days (0: all history)
/// 40   4  0 when the walk searched the whole window; else the number of commits it had read
///         when it first reached a limit of tree entries
/// 44   4  C, the number of commits
/// 48   4  E, the number of entries
/// 52  32  bit f (byte f/8, bit 7 - f%8) set: fan-out folder f was not searched to the end of
///         the window (its versions, or all trees together, passed a limit)
/// 84      C x 20 bytes: commit ids
///         E x 56 bytes: sha256 (32) | git blob id (20) | commit number (4),
///         sorted by sha256, then by commit number (newest first)
/// ```
/// Lookups binary-search the encoded bytes directly, so a map loaded from a cache file (it is
/// memory-mapped) costs no parsing at all.
struct GitHistoryMap: Sendable {
  static let magic = Array("TSKHIST2".utf8)
  static let headerSize = 84
  static let oidSize = 20
  static let entrySize = 32 + 20 + 4

  /// The encoded bytes.
  let data: Data
  let tip: [UInt8]
  let newest: Int64
  let days: Int
  /// 0 when the whole window was searched; else how many commits were, newest first, before
  /// the walk reached its limit of tree entries.
  let stoppedAfter: Int
  /// The fan-out folders not searched to the end of the window, one bit each.
  private let cut: [UInt8]
  let commitCount: Int
  let entryCount: Int

  /// One place a blob was found.
  struct Candidate: Equatable, Sendable {
    /// The git blob id (20 bytes).
    var blob: [UInt8]
    /// The newest commit of the window that held it (20 bytes).
    var commit: [UInt8]
  }

  /// Reads encoded bytes; nil when they are not a complete map (a truncated or foreign file).
  init?(data: Data) {
    guard data.count >= Self.headerSize, Array(data.prefix(8)) == Self.magic else { return nil }
    let (tip, newest, days, stopped, c, e) = data.withUnsafeBytes { raw in
      (
        Array(raw[8..<28]), Int64(bitPattern: Self.read(raw, 28, 8)), Int(Self.read(raw, 36, 4)),
        Int(Self.read(raw, 40, 4)), Int(Self.read(raw, 44, 4)), Int(Self.read(raw, 48, 4))
      )
    }
    guard data.count == Self.headerSize + c * Self.oidSize + e * Self.entrySize else { return nil }
    cut = Array(data[data.startIndex + 52..<data.startIndex + 84])
    (self.data, self.tip, self.newest, self.days) = (data, tip, newest, days)
    (stoppedAfter, commitCount, entryCount) = (stopped, c, e)
  }

  /// Whether the walk searched the fan-out folder of `id` through the whole window.
  func searchedInFull(_ id: ObjectID) -> Bool {
    let f = Int(id.w0 >> 56)
    return cut[f >> 3] & (0x80 >> UInt8(f & 7)) == 0
  }

  private var entriesOffset: Int { Self.headerSize + commitCount * Self.oidSize }

  /// Every place `id` was found in the window, newest commit first; empty when it was not.
  func candidates(_ id: ObjectID) -> [Candidate] {
    let key = id.bytes
    return data.withUnsafeBytes { raw -> [Candidate] in
      let base = raw.baseAddress!
      let start = entriesOffset
      func compare(_ i: Int) -> Int32 {
        key.withUnsafeBytes { memcmp(base + start + i * Self.entrySize, $0.baseAddress!, 32) }
      }
      // The first entry whose name is >= key.
      var (lo, hi) = (0, entryCount)
      while lo < hi {
        let mid = (lo + hi) / 2
        if compare(mid) < 0 { lo = mid + 1 } else { hi = mid }
      }
      var out = [Candidate]()
      var i = lo
      while i < entryCount && compare(i) == 0 {
        let at = start + i * Self.entrySize
        let n = Int(Self.read(raw, at + 52, 4))
        if n < commitCount {
          let c = Self.headerSize + n * Self.oidSize
          out.append(Candidate(blob: Array(raw[(at + 32)..<(at + 52)]), commit: Array(raw[c..<(c + Self.oidSize)])))
        }
        i += 1
      }
      return out
    }
  }

  private static func read(_ raw: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in at..<(at + count) { v = v << 8 | UInt64(raw[i]) }
    return v
  }

  /// A git object id (20 bytes) as three words: no heap allocation per entry.
  struct OIDKey: Hashable {
    var a: UInt64, b: UInt64, c: UInt32

    init(_ p: UnsafePointer<UInt8>) {
      let raw = UnsafeRawPointer(p)
      a = raw.loadUnaligned(as: UInt64.self)
      b = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
      c = raw.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
    }

    init(_ bytes: [UInt8]) {
      precondition(bytes.count == GitHistoryMap.oidSize, "a git blob id is 20 bytes")
      self = bytes.withUnsafeBufferPointer { OIDKey($0.baseAddress!) }
    }

    var bytes: [UInt8] {
      var v = self
      return withUnsafeBytes(of: &v) { Array($0.prefix(GitHistoryMap.oidSize)) }
    }
  }

  /// One place a walk found a blob: its name, the git blob and the commit number.
  struct Row {
    var id: ObjectID
    var blob: OIDKey
    var commit: UInt32
  }

  /// Collects what a walk of history finds; `finish` sorts it into a map. Holds one fixed-size
  /// row per (name, git blob) the walk reports, so its memory follows what history adds, not
  /// the size of the trees read.
  struct Builder {
    let tip: [UInt8]
    let days: Int
    var newest: Int64 = 0
    /// Set when the walk first reached a limit: the number of commits it had read.
    var stoppedAfter = 0
    /// The fan-out folders not searched to the end of the window, one bit each.
    var cut = [UInt8](repeating: 0, count: 32)
    private var commits = [[UInt8]]()
    private var rows = [Row]()

    init(tip: [UInt8], days: Int) {
      precondition(tip.count == GitHistoryMap.oidSize, "a git commit id is 20 bytes")
      (self.tip, self.days) = (tip, days)
    }

    /// Adds a commit (walked newest first) and returns its number.
    mutating func commit(_ id: [UInt8]) -> UInt32 {
      commits.append(id)
      return UInt32(commits.count - 1)
    }

    /// Records that commit number `commit` holds `id` as the git blob `blob`.
    mutating func add(_ id: ObjectID, blob: OIDKey, commit: UInt32) {
      rows.append(Row(id: id, blob: blob, commit: commit))
    }

    mutating func add(_ id: ObjectID, blob: [UInt8], commit: UInt32) { add(id, blob: OIDKey(blob), commit: commit) }

    /// The rows recorded so far (for tests and measurements).
    var rowCount: Int { rows.count }

    /// The map: sorted by name, then newest commit first, one row per (name, git blob).
    func finish() -> GitHistoryMap {
      let sorted = rows.sorted { ($0.id, $0.commit) < ($1.id, $1.commit) }
      var kept = [Row]()
      var seen = Set<OIDKey>()
      for (i, r) in sorted.enumerated() {
        if i > 0 && sorted[i - 1].id != r.id { seen.removeAll(keepingCapacity: true) }
        if seen.insert(r.blob).inserted { kept.append(r) }
      }
      var out = Data(capacity: GitHistoryMap.headerSize + commits.count * 20 + kept.count * GitHistoryMap.entrySize)
      func put(_ v: UInt64, _ count: Int) {
        for s in stride(from: (count - 1) * 8, through: 0, by: -8) {
          out.append(UInt8(truncatingIfNeeded: v >> UInt64(s)))
        }
      }
      out.append(contentsOf: GitHistoryMap.magic)
      out.append(contentsOf: tip)
      put(UInt64(bitPattern: newest), 8)
      put(UInt64(days), 4)
      put(UInt64(stoppedAfter), 4)
      put(UInt64(commits.count), 4)
      put(UInt64(kept.count), 4)
      out.append(contentsOf: cut)
      for c in commits { out.append(contentsOf: c) }
      for r in kept {
        put(r.id.w0, 8)
        put(r.id.w1, 8)
        put(r.id.w2, 8)
        put(r.id.w3, 8)
        out.append(contentsOf: r.blob.bytes)
        put(UInt64(r.commit), 4)
      }
      return GitHistoryMap(data: out)!
    }
  }
}

/// History maps cached on disk, one file per repository, layout folder, window and tip:
/// `<key>-<tip commit>.map`, where `key` is the first 32 hex digits of the SHA-256 of the
/// repository path, the subfolder and the window. Writing a map for a new tip removes the
/// maps of older tips with the same key, so the folder holds one map per store.
enum GitHistoryCache {
  /// The file-name prefix shared by every tip of one repository, subfolder and window.
  static func key(repository: String, subdirectory: String, days: Int) -> String {
    String(SHA256.hash(Data("\(repository)\u{0}\(subdirectory)\u{0}\(days)".utf8)).hex.prefix(32))
  }

  static func path(_ directory: String, key: String, tip: String) -> String { "\(directory)/\(key)-\(tip).map" }

  /// The cached map at `path`, memory-mapped; nil when there is none or it is damaged (it is
  /// then rebuilt and rewritten).
  static func load(_ path: String, tip: [UInt8], days: Int) -> GitHistoryMap? {
    // Through FileIO: a FIFO or other non-regular file planted under this name is refused
    // (the map is rebuilt) instead of blocking the read.
    let fd = FileIO.openRaw(path, O_RDONLY)
    if fd < 0 { return nil }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_size >= GitHistoryMap.headerSize else { return nil }
    let size = Int(st.st_size)
    guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { return nil }
    let data = Data(bytesNoCopy: p, count: size, deallocator: .custom { p, n in munmap(p, n) })
    guard let map = GitHistoryMap(data: data), map.tip == tip, map.days == days else { return nil }
    return map
  }

  /// Writes a map atomically (a temporary file in the folder, then `rename`) and removes the
  /// maps of older tips of the same store. Best effort: returns false when the folder cannot
  /// be written (the map is then simply rebuilt by the next process).
  @discardableResult
  static func save(_ map: GitHistoryMap, in directory: String, key: String, tip: String) -> Bool {
    let target = path(directory, key: key, tip: tip)
    let tmp = "\(directory)/.tmp-\(key.prefix(16))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    do {
      try FileIO.makeDirectories(directory)
      try AtomicFile.write(map.data, to: target, temporary: tmp, durable: false)
    } catch {
      return false
    }
    let mine = (target as NSString).lastPathComponent
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    where name.hasPrefix(key + "-") && name.hasSuffix(".map") && name != mine {
      unlink(directory + "/" + name)
    }
    return true
  }
}
