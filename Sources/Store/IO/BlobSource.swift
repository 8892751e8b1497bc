import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A blob to write whose name and size are known up front and whose bytes are read only when
/// a backend writes it (from a file, a spill file, or built on demand), so one change can
/// carry more bytes than fit in memory. See `ObjectWriter.apply(_:sources:)`.
public struct BlobSource: Sendable {
  public let id: ObjectID
  public let size: Int
  private let from: From

  // At most 16 bytes of payload, so a source is 64 bytes: a publish holds one per blob.
  enum From: Sendable {
    case memory(Data)
    case path(String)
    case table(PathTable, Int32)
    case spill(SpillFile, offset: Int)
    case reader(Reader)
  }

  final class Reader: Sendable {
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

  /// Bytes in memory that the caller has checked already to hash to `id` (fetched and
  /// verified): not hashed again.
  public static func verified(_ data: Data, id: ObjectID) -> BlobSource {
    BlobSource(id: id, size: data.count, from: .memory(data))
  }

  /// The file at `path`, hashed earlier to `id` and `size`.
  public static func file(_ path: String, id: ObjectID, size: Int) -> BlobSource {
    BlobSource(id: id, size: size, from: .path(path))
  }

  /// The file at path `index` of `table`, hashed earlier to `id` and `size`.
  public static func file(_ table: PathTable, _ index: Int32, id: ObjectID, size: Int) -> BlobSource {
    BlobSource(id: id, size: size, from: .table(table, index))
  }

  init(id: ObjectID, size: Int, from: From) {
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
    let small = sources.indices.filter { sources[$0].size < largeBytes }
    for r in small.batchRanges(maxBytes: maxBytes, maxCount: maxCount, size: { sources[$0].size }) {
      let batch = small[r]
      try body(Array(zip(batch, try loadAll(batch.map { sources[$0] }, checked: checked))))
    }
  }

  /// Loads every source, on every core; the first failure (in order) is thrown.
  public static func loadAll(_ sources: [BlobSource], checked: Bool = true) throws -> [Data] {
    try ParallelMap.map(sources.count) { i in checked ? try sources[i].load() : try sources[i].loadUnchecked() }
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
