import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A blob to write whose name and size are known up front and whose bytes are read only when
/// a backend writes it (from a file, a spill file, or built on demand), so one change can
/// carry more bytes than fit in memory. See `ObjectStore.apply(_:sources:)`.
public struct BlobSource: Sendable {
  public let id: ObjectID
  public let size: Int
  private let from: From

  // At most 16 bytes of payload, so a source is 64 bytes: a publish holds one per blob.
  fileprivate enum From: Sendable {
    case memory(Data)
    case path(String)
    case table(PathTable, Int32)
    case spill(SpillFile, offset: Int)
    case reader(Reader)
  }

  fileprivate final class Reader: Sendable {
    let origin: String
    let read: @Sendable () throws -> Data
    init(_ origin: String, _ read: @escaping @Sendable () throws -> Data) {
      self.origin = origin
      self.read = read
    }
  }

  /// A source read by `read`, which must give exactly the bytes that hash to `id`; `origin`
  /// names it in messages.
  public init(id: ObjectID, size: Int, origin: String, read: @escaping @Sendable () throws -> Data) {
    self.id = id
    self.size = size
    from = .reader(Reader(origin, read))
  }

  /// Bytes already in memory.
  public init(_ data: Data) {
    id = SHA256.hash(data)
    size = data.count
    from = .memory(data)
  }

  /// The file at `path`, hashed earlier to `id` and `size`.
  public static func file(_ path: String, id: ObjectID, size: Int) -> BlobSource {
    BlobSource(id: id, size: size, from: .path(path))
  }

  /// The file at path `index` of `table`, hashed earlier to `id` and `size`.
  public static func file(_ table: PathTable, _ index: Int32, id: ObjectID, size: Int) -> BlobSource {
    BlobSource(id: id, size: size, from: .table(table, index))
  }

  fileprivate init(id: ObjectID, size: Int, from: From) {
    self.id = id
    self.size = size
    self.from = from
  }

  /// Where the bytes come from, for messages: a file path, "memory", what a reader was named.
  public var origin: String {
    switch from {
    case .memory: "memory"
    case .path(let path): path
    case .table(let t, let i): t.path(i)
    case .spill(let f, let offset): "a temporary file in \(f.path) (at \(offset))"
    case .reader(let r): r.origin
    }
  }

  /// The bytes as the source gives them, unchecked.
  private func read() throws -> Data {
    switch from {
    case .memory(let data): data
    case .path(let path): try readWholeFile(path, expected: size)
    case .table(let t, let i): try readWholeFile(t.path(i), expected: size)
    case .spill(let f, let offset): try f.read(at: offset, count: size)
    case .reader(let r): try r.read()
    }
  }

  /// Whether `load` re-hashes: for anything read back from outside memory (a file may change
  /// after it was hashed), not for bytes in memory.
  private var checked: Bool {
    if case .memory = from { return false }
    return true
  }

  /// The bytes, checked against the name: a source that no longer gives them (a file edited
  /// during a publish) is refused, so a store never holds a blob under a wrong name.
  public func load() throws -> Data {
    let data = try read()
    if checked && (data.count != size || SHA256.hash(data) != id) {
      throw TsukuError(
        .other,
        "'\(origin)' changed while publishing (expected \(size) bytes hashing to '\(id.hex.prefix(12))'); the index was not written, run it again"
      )
    }
    return data
  }

  /// The bytes as `read` gives them, unchecked: for a caller that checks a larger whole (a pack
  /// built of sources is checked against the pack's own name).
  public func loadUnchecked() throws -> Data { try read() }

  /// Bytes per batch of `batches`: what a backend holds at once while writing sources.
  public static let batchBytes = 8 << 20

  /// Loads `sources` in batches of at most `maxBytes` (a larger source is a batch of its own)
  /// and at most `maxCount` blobs, each batch read on every core, and hands each batch to
  /// `body` as (position in `sources`, bytes); one batch is in memory at a time. Sources of
  /// `largeBytes` or more (packs) come first, one at a time: a buffer that large is given back
  /// to the system when freed, so it does not add to the heap the small ones then reuse batch
  /// after batch. The rest keep their order. `checked: false` skips the hash check of `load`,
  /// for a caller that compares the bytes itself.
  public static func batches<C: RandomAccessCollection>(
    _ sources: C, maxBytes: Int = batchBytes, maxCount: Int = 4096, largeBytes: Int = 1 << 20, checked: Bool = true,
    _ body: ([(C.Index, Data)]) throws -> Void
  ) throws where C.Element == BlobSource {
    for i in sources.indices where sources[i].size >= largeBytes {
      try body([(i, checked ? try sources[i].load() : try sources[i].loadUnchecked())])
    }
    var batch = [C.Index]()
    var bytes = 0
    func flush() throws {
      if batch.isEmpty { return }
      try body(Array(zip(batch, try loadAll(batch.map { sources[$0] }, checked: checked))))
      batch = []
      bytes = 0
    }
    for i in sources.indices where sources[i].size < largeBytes {
      let size = sources[i].size
      if !batch.isEmpty && (bytes + size > maxBytes || batch.count >= maxCount) { try flush() }
      batch.append(i)
      bytes += size
    }
    try flush()
  }

  /// Loads every source, on every core; the first failure (in order) is thrown.
  public static func loadAll(_ sources: [BlobSource], checked: Bool = true) throws -> [Data] {
    try ParallelMap.map(sources.count) { i in checked ? try sources[i].load() : try sources[i].loadUnchecked() }
  }
}

/// Many file paths under one folder in one buffer: a few bytes per path beyond its text,
/// instead of a string object each. Paths are added while it is built (by one thread) and
/// only read afterwards, from any thread.
public final class PathTable: @unchecked Sendable {
  /// The folder the paths are relative to.
  public let base: String
  private var bytes = [UInt8]()
  private var ends = [UInt32]()

  public init(base: String) { self.base = base }

  /// Adds `base/rel` and returns its index.
  public func add(_ rel: String) -> Int32 {
    bytes.append(contentsOf: rel.utf8)
    ends.append(UInt32(bytes.count))
    return Int32(ends.count - 1)
  }

  public var count: Int { ends.count }

  /// The path at `index`, relative to `base`.
  public func relative(_ index: Int32) -> String {
    let i = Int(index)
    let start = i == 0 ? 0 : Int(ends[i - 1])
    return String(decoding: bytes[start..<Int(ends[i])], as: UTF8.self)
  }

  /// The full path at `index`.
  public func path(_ index: Int32) -> String { base + "/" + relative(index) }

  /// Every index, ordered by the bytes of its path (for ASCII names, the order of the strings).
  public func sortedIndices() -> [Int32] {
    bytes.withUnsafeBufferPointer { b in
      func range(_ i: Int32) -> (Int, Int) {
        let k = Int(i)
        return (k == 0 ? 0 : Int(ends[k - 1]), Int(ends[k]))
      }
      return (0..<Int32(ends.count)).sorted { x, y in
        let (xs, xe) = range(x)
        let (ys, ye) = range(y)
        let n = min(xe - xs, ye - ys)
        let c = n == 0 ? 0 : memcmp(b.baseAddress! + xs, b.baseAddress! + ys, n)
        return c != 0 ? c < 0 : xe - xs < ye - ys
      }
    }
  }
}

/// An unnamed temporary file that blobs are appended to and read back from, so bytes made
/// during a publish (the index shards) need not stay in memory. It is unlinked as soon as it
/// is made: nothing is left behind, whatever happens to the process.
public final class SpillFile: Sendable {
  private let fd: Int32
  private let end = Mutex(0)
  /// The folder it was made in, for messages.
  public let path: String

  public init(in directory: String = NSTemporaryDirectory()) throws {
    var dir = directory
    while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
    let name = "\(dir)/.tsuku-spill-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = FileIO.openRaw(name, O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
    if fd < 0 { throw TsukuError.io("cannot create a temporary file in", dir, errno: errno) }
    unlink(name)
    self.fd = fd
    self.path = dir
  }

  deinit { close(fd) }

  /// Appends `data` and returns a source that reads it back.
  public func append(_ data: Data) throws -> BlobSource {
    try end.withLock { end in
      try FileIO.write(fd, data, at: end, path, failing: "cannot write a temporary file in")
      let source = BlobSource(id: SHA256.hash(data), size: data.count, from: .spill(self, offset: end))
      end += data.count
      return source
    }
  }

  func read(at offset: Int, count: Int) throws -> Data {
    try FileIO.read(fd, count: count, at: offset, path, failing: "cannot read a temporary file in")
  }
}

/// Reads a whole file, refusing one that is not `expected` bytes (when given).
public func readWholeFile(_ path: String, expected: Int? = nil) throws -> Data {
  let fd = try FileIO.open(path, O_RDONLY, failing: "cannot read")
  defer { close(fd) }
  let size = try FileIO.size(fd, path)
  if let expected, size != expected {
    throw TsukuError(
      .other,
      "'\(path)' changed while publishing (\(size) bytes, \(expected) expected); the index was not written, run it again"
    )
  }
  return try FileIO.read(fd, count: size, path)
}

/// Positions of the first copy of each name in `sources`: a publish's own list has no
/// duplicates, but a backend must not write one twice. Sorting positions costs 4 bytes a
/// blob, where a set of names would cost about 40.
public func firstCopies(_ sources: [BlobSource]) -> [Int32] {
  var order = (0..<Int32(sources.count)).map { $0 }
  order.sort { a, b in
    let (x, y) = (sources[Int(a)].id, sources[Int(b)].id)
    return x != y ? x < y : a < b
  }
  var duplicate = [Bool](repeating: false, count: sources.count)
  for k in order.indices.dropFirst() where sources[Int(order[k])].id == sources[Int(order[k - 1])].id {
    duplicate[Int(order[k])] = true
  }
  return (0..<Int32(sources.count)).filter { !duplicate[Int($0)] }
}

/// The blobs of a change, each name once: its sources (by position, no copy) and then its
/// in-memory objects; `duplicates` counts the copies left out.
public struct ChangeBlobs: RandomAccessCollection, Sendable {
  public let sources: [BlobSource]
  public let unique: [Int32]
  public let objects: [BlobSource]
  public let duplicates: Int

  public init(_ change: StoreChange, sources: [BlobSource]) {
    self.sources = sources
    unique = firstCopies(sources)
    var dups = sources.count - unique.count
    var extra = [BlobSource]()
    var seen = Set<ObjectID>()
    // A publish adds one object (the tree) to many sources: a scan is cheaper than a set.
    let sourceIDs: Set<ObjectID>? = change.objects.count > 16 && !sources.isEmpty ? Set(sources.map(\.id)) : nil
    for data in change.objects {
      let s = BlobSource(data)
      let inSources = sourceIDs.map { $0.contains(s.id) } ?? sources.contains { $0.id == s.id }
      if inSources || !seen.insert(s.id).inserted { dups += 1 } else { extra.append(s) }
    }
    objects = extra
    duplicates = dups
  }

  public var startIndex: Int { 0 }
  public var endIndex: Int { unique.count + objects.count }
  public subscript(position: Int) -> BlobSource {
    position < unique.count ? sources[Int(unique[position])] : objects[position - unique.count]
  }
}

extension ObjectWriter {
  /// The generic `apply(_:sources:)`: the precondition is checked before anything is written;
  /// then the sources the store lacks (by `present`) go in batches, each one `apply`; then
  /// `change` itself (its objects, documents and precondition) as the last one. A backend
  /// that makes one commit per change (git) or can check presence in bulk implements it itself.
  public func applyInBatches(
    _ change: StoreChange, sources: [BlobSource], present: (BlobSource) throws -> Bool = { _ in false }
  ) throws -> ApplyReport {
    if sources.isEmpty { return try apply(change) }
    if change.precondition != .none {
      try checkPrecondition(
        change.precondition, current: try readDocument(.index, maxSize: Int.max), location: location)
    }
    var report = ApplyReport()
    let unique = firstCopies(sources)
    report.objectsPresent = sources.count - unique.count
    var lacking = [Int32]()
    for i in unique {
      if try present(sources[Int(i)]) { report.objectsPresent += 1 } else { lacking.append(i) }
    }
    try BlobSource.batches(lacking.lazy.map { sources[Int($0)] }) { batch in
      report.add(try apply(StoreChange(objects: batch.map(\.1), message: change.message, time: change.time)))
    }
    report.add(try apply(change))
    return report
  }

  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    try applyInBatches(change, sources: sources) { try contains($0.id) }
  }
}

extension ApplyReport {
  /// Adds the counts of `other` (and takes its commit, if it made one).
  public mutating func add(_ other: ApplyReport) {
    objectsWritten += other.objectsWritten
    objectsPresent += other.objectsPresent
    bytesWritten += other.bytesWritten
    documentsWritten += other.documentsWritten
    objectsPruned += other.objectsPruned
    commit = other.commit ?? commit
  }
}
