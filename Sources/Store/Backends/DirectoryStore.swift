import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The store layout in a local directory: the client cache, a mirror folder, an exported bundle.
///
/// Writes are atomic: each file is written under a temporary name in its final folder and
/// renamed into place. A large batch of blobs shares one durability point (one `syncfs` of the
/// file system) with the documents written before `index.json`, instead of an fsync per file;
/// `index.json` is written last and fsynced. A crash can leave a blob that is not yet durable,
/// but never an index that names it: reads re-hash, so such a blob is found corrupt and fetched
/// again. Several processes may write at once: blob names are content hashes, and documents are
/// written under an exclusive lock on `<root>/.lock`. See docs/format.md, section 12.
public final class DirectoryStore: ObjectStore {
  public let root: String
  public var location: String { root }

  /// Opens (without creating) the store rooted at `path`.
  public init(path: String) {
    var p = path
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    self.root = p
    packs = PackedObjects(root: p)
  }

  /// Packs kept whole (see `addPacks`).
  let packs: PackedObjects

  /// Forgets the pack tables read so far, so the next lookup lists the packs again (another
  /// process may have added or rewritten some).
  public func rereadPacks() { packs.invalidate() }

  private func objectPath(_ id: ObjectID) -> String { root + "/" + id.path }

  public func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    let path = objectPath(id)
    guard let data = try readFile(path, maxSize: maxSize, what: "blob '\(id.hex)'") ?? packed(id, maxSize) else {
      throw missing(id)
    }
    return try verified(data, as: id, maxSize: maxSize)
  }

  /// As `get`, looking in the packs first: for a reader (`serve`) whose blobs arrived in
  /// packs, no failed `open` of a loose file on every read. Verified the same way.
  public func getPackedFirst(_ id: ObjectID, maxSize: Int) throws -> Data {
    if let data = try packed(id, maxSize) { return try verified(data, as: id, maxSize: maxSize) }
    return try get(id, maxSize: maxSize)
  }

  private func packed(_ id: ObjectID, _ maxSize: Int) throws -> Data? {
    switch packs.get(id, maxSize: maxSize) {
    case nil, .unreadable?: return nil
    case .tooLarge(let size)?: throw tooLarge("blob '\(id.hex)'", size: size, max: maxSize)
    case .bytes(let d)?: return d
    }
  }

  public func contains(_ id: ObjectID) throws -> Bool {
    if packs.contains(id) { return true }
    var st = stat()
    return stat(objectPath(id), &st) == 0
  }

  /// Keeps whole packs (already verified by the caller against their pinned hashes) in
  /// `<root>/packs/`: one file per pack rather than one per blob. They share the durability
  /// point of the next `apply`, which must follow (it writes the index that names them).
  /// Returns the files written.
  @discardableResult
  public func addPacks(_ list: [Data]) throws -> [String] {
    guard !list.isEmpty else { return [] }
    try makeDirectory(packs.dir)
    var paths = [String]()
    for data in list {
      // A pack is its own durability point: one fsync for all the blobs it holds.
      let path = packs.dir + "/" + SHA256.hash(data).hex + ".pack"
      try writeAtomically(data, to: path, durable: true)
      paths.append(path)
    }
    packs.invalidate()
    return paths
  }

  /// A merged pack that a sync writes as its packs arrive, under a temporary name no reader
  /// sees (`.tmp-…`, swept if left behind); `commit(_:arrived:)` puts it in place. One write
  /// and one fsync for all the packs of a cold sync (see `PackAssembly`).
  public func assembly(of parts: [PackAssembly.Part], describe: @escaping @Sendable (PackAssembly.Part) -> String) throws
    -> PackAssembly
  {
    try makeDirectory(packs.dir)
    return try PackAssembly(parts: parts, in: packs.dir, describe: describe)
  }

  /// Finishes `assembly` with the parts that arrived, as one durable pack (nil path when none did).
  public func commit(_ assembly: PackAssembly, arrived: [Bool]) throws -> PackAssembly.Outcome {
    let outcome = try assembly.commit(arrived: arrived)
    packs.invalidate()
    return outcome
  }

  /// Merges the pack files at `paths` (in this store's pack folder) into one, on disk (see
  /// `PackFile.merge`), and removes them.
  /// Returns the merged pack's path (the one path when there is nothing to merge).
  @discardableResult
  public func mergePacks(_ paths: [String]) throws -> String? {
    var distinct = Array(Set(paths)).sorted()
    guard distinct.count > 1 else { return distinct.first }
    let merged: String
    do {
      merged = try PackFile.merge(distinct, into: packs.dir)
    } catch let e as TsukuError where e.code == .integrity {
      // A damaged input is set aside and the others merged: a damaged pack blocks nothing.
      let damaged = packs.checkAll(distinct)
      if damaged.isEmpty { throw e }
      distinct.removeAll { p in damaged.contains { $0.path == p } }
      return try mergePacks(distinct)
    }
    for p in distinct where p != merged { unlink(p) }
    packs.invalidate()
    return merged
  }

  /// Merges the smallest packs into one when there are more than `keeping` of them, so a
  /// lookup searches a bounded number of tables however many syncs made packs.
  public func consolidatePacks(keeping: Int) throws {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: packs.dir)) ?? []).filter { $0.hasSuffix(".pack") }
    guard names.count > keeping else { return }
    var sized = names.map { n -> (String, Int) in
      var st = stat()
      return (n, stat(packs.dir + "/" + n, &st) == 0 ? Int(st.st_size) : 0)
    }
    sized.sort { $0.1 < $1.1 }
    try mergePacks(sized.prefix(names.count - keeping + 1).map { packs.dir + "/" + $0.0 })
  }

  /// The pack files of this store.
  public func packFiles() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: packs.dir)) ?? []).filter { $0.hasSuffix(".pack") }.sorted().map {
      packs.dir + "/" + $0
    }
  }

  /// The loose blobs of this store (not those in packs).
  public func looseObjects() throws -> [ObjectID] { try looseList() }

  /// Every stored blob with its size and modification time (loose files and packed blobs).
  /// An upper bound of the blob bytes stored, without listing the packed blobs: the loose
  /// files' sizes plus the packs' sizes on disk (tables and any copy held twice included).
  public func diskBytes() -> Int {
    var total = packs.diskBytes()
    for id in (try? looseList()) ?? [] {
      var st = stat()
      if stat(objectPath(id), &st) == 0 { total += Int(st.st_size) }
    }
    return total
  }

  public func sizes() -> [(ObjectID, Int, Int)] {
    var out = [(ObjectID, Int, Int)]()
    for id in (try? looseList()) ?? [] {
      var st = stat()
      if stat(objectPath(id), &st) == 0 { out.append((id, Int(st.st_size), Int(st.st_mtim.tv_sec))) }
    }
    return out + packs.list()
  }

  public func list() throws -> [ObjectID] {
    Array(Set(try looseList() + packs.list().map(\.0))).sorted()
  }

  private func looseList(_ area: ObjectArea = .live) throws -> [ObjectID] {
    let base = root + "/" + area.folder
    let fm = FileManager.default
    guard let fans = try? fm.contentsOfDirectory(atPath: base) else { return [] }
    var out = [ObjectID]()
    for fan in fans where fan.count == 2 {
      for name in (try? fm.contentsOfDirectory(atPath: base + "/" + fan)) ?? [] {
        if let id = ObjectID(hex: name), id.fanout == fan { out.append(id) }
      }
    }
    return out.sorted()
  }

  public func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    try readFile(root + "/" + name.path, maxSize: maxSize, what: "'\(name.path)'")
  }

  /// Loose files only: `packs/` (kept by client caches) is not part of the layout a publisher
  /// writes, so retention and bucket usage leave it out.
  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    var out = [StoredObject]()
    for id in try looseList(area) {
      var st = stat()
      guard stat(root + "/" + area.path(id), &st) == 0 else { continue }
      let modified = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec) + TimeInterval(st.st_mtim.tv_nsec) / 1e9)
      out.append(StoredObject(id: id, size: Int(st.st_size), modified: dated ? modified : nil))
    }
    return out
  }

  /// A rename per blob (same file system), then its modification time is set to now: that is
  /// when it entered the new area.
  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if from == to { return 0 }
    var moved = 0
    var made = Set<String>()
    for id in Set(ids).sorted() {
      let (src, dst) = (root + "/" + from.path(id), root + "/" + to.path(id))
      var st = stat()
      guard stat(src, &st) == 0 else { continue }
      let dir = (dst as NSString).deletingLastPathComponent
      if made.insert(dir).inserted { try makeDirectory(dir) }
      if rename(src, dst) != 0 {
        if errno == ENOENT { continue }
        throw TsukuError.io("cannot move into", dst, errno: errno)
      }
      if utimensat(AT_FDCWD, dst, nil, 0) != 0 { throw TsukuError.io("cannot date", dst, errno: errno) }
      moved += 1
    }
    for dir in made { FileIO.syncFolder(dir) }
    return moved
  }

  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if area == .live { return try remove(ids) }
    for id in ids {
      let path = root + "/" + area.path(id)
      if unlink(path) != 0 && errno != ENOENT { throw TsukuError.io("cannot remove", path, errno: errno) }
    }
  }

  @discardableResult
  public func apply(_ change: StoreChange) throws -> ApplyReport {
    // A publisher that lost a race should write nothing at all: check before the blobs too
    // (and again under the lock, before the documents).
    if change.precondition != .none {
      try checkPrecondition(change.precondition, current: try readDocument(.index, maxSize: Int.max), location: root)
    }
    if change.checkpoint != .any {
      try checkCheckpointCondition(
        change.checkpoint, current: try readDocument(.checkpoint, maxSize: Int.max), location: root)
    }
    try makeDirectory(root)
    let objects = change.objects
    let few = objects.count <= Self.fewBlobs
    let ids = few ? objects.map { SHA256.hash($0) } : ParallelMap.map(objects.count) { SHA256.hash(objects[$0]) }
    var folders = Set<String>()
    var report = try writeBlobs(
      objects.indices.map { (ids[$0], objects[$0]) }, durable: few, checked: false, folders: &folders)
    try writeDocuments(change, syncing: Self.syncing(report, few: few), into: &report)
    return report
  }

  /// Whether the documents wait for one `syncfs`: when blobs were written without an fsync
  /// each, and also when blobs were found present, since another writer (or an earlier run
  /// that failed before its documents) may have renamed them without making them durable yet.
  static func syncing(_ r: ApplyReport, few: Bool) -> Bool { (!few && r.objectsWritten > 0) || r.objectsPresent > 0 }

  /// Blobs from `sources` (read in batches, see `BlobSource.batches`) with the change's own,
  /// then its documents. A blob whose file exists with the right size is present and never
  /// read from its source (one stat each, before anything is read); all the batches share one
  /// durability point.
  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    if sources.isEmpty { return try apply(change) }
    if change.precondition != .none {
      try checkPrecondition(change.precondition, current: try readDocument(.index, maxSize: Int.max), location: root)
    }
    if change.checkpoint != .any {
      try checkCheckpointCondition(
        change.checkpoint, current: try readDocument(.checkpoint, maxSize: Int.max), location: root)
    }
    try makeDirectory(root)
    let unique = firstCopies(sources)
    var report = ApplyReport()
    report.objectsPresent = sources.count - unique.count
    // A blob whose file has its size is present, and never read from its source.
    let lacking = unique.filter { i in
      var st = stat()
      return !(stat(objectPath(sources[Int(i)].id), &st) == 0 && Int(st.st_size) == sources[Int(i)].size)
    }
    report.objectsPresent += unique.count - lacking.count
    let few = lacking.count + change.objects.count <= Self.fewBlobs
    var folders = Set<String>()
    try BlobSource.batches(lacking.lazy.map { sources[Int($0)] }) { batch in
      report.add(
        try writeBlobs(
          batch.map { (sources[Int(lacking[$0.0])].id, $0.1) }, durable: few, checked: true, folders: &folders))
    }
    // The change's own blobs (in memory) with them.
    let objects = change.objects
    let ids = ParallelMap.map(objects.count) { SHA256.hash(objects[$0]) }
    report.add(
      try writeBlobs(objects.indices.map { (ids[$0], objects[$0]) }, durable: few, checked: false, folders: &folders))
    try writeDocuments(change, syncing: Self.syncing(report, few: few), into: &report)
    return report
  }

  /// Up to this many blobs are fsynced one by one, which costs less than flushing everything
  /// else on the file system too; more share one `syncfs`.
  static let fewBlobs = 32

  /// Writes `blobs` (name, verified bytes), on every core unless `durable` (then one by one,
  /// each fsynced). Their fan-out folders are made first, once each (`folders` remembers them
  /// across batches). `checked`: the caller found them absent already.
  private func writeBlobs(
    _ blobs: [(ObjectID, Data)], durable: Bool, checked: Bool, folders: inout Set<String>
  ) throws -> ApplyReport {
    for fan in Set(blobs.map(\.0.fanout)) where folders.insert(fan).inserted {
      try makeDirectory(root + "/objects/sha256/" + fan)
    }
    let written = try ParallelMap.map(blobs.count, workers: durable ? 1 : max(4, ParallelMap.processors)) { [self] i in
      try writeBlob(blobs[i].1, id: blobs[i].0, durable: durable, checked: checked)
    }
    var report = ApplyReport()
    for ((_, data), wrote) in zip(blobs, written) {
      if wrote {
        report.objectsWritten += 1
        report.bytesWritten += data.count
      } else {
        report.objectsPresent += 1
      }
    }
    return report
  }

  /// The documents of `change` under the lock, after its precondition is checked again,
  /// `index.json` last. With `syncing` (blobs were written without a flush of their own), the
  /// other documents are written without one too and a single `syncfs` makes all of them
  /// durable before `index.json`, which is fsynced, so an index never names a blob a crash
  /// can lose; otherwise each document is fsynced.
  private func writeDocuments(_ change: StoreChange, syncing: Bool, into report: inout ApplyReport) throws {
    let docs = change.orderedDocuments
    if docs.isEmpty && change.precondition == .none && change.checkpoint == .any {
      if syncing { try syncFileSystem() }
      return
    }
    try withLock {
      // Read only to compare: a cached index.json that cannot be read (not a regular file) is
      // replaced, not a reason to refuse the write.
      if change.precondition != .none {
        try checkPrecondition(change.precondition, current: try readDocument(.index, maxSize: Int.max), location: root)
      }
      try checkCheckpointCondition(
        change.checkpoint, current: change.checkpoint == .any ? nil : try readDocument(.checkpoint, maxSize: Int.max),
        location: root)
      var pending = syncing
      for (name, data) in docs {
        let path = root + "/" + name.path
        // Under the lock every writer of this directory takes, so the check and the write
        // are one step.
        if name.isWriteOnce,
          !(try writeOnceNeeded(name, existing: try readDocument(name, maxSize: 1 << 26), new: data, location: root))
        {
          continue
        }
        try makeDirectory((path as NSString).deletingLastPathComponent)
        if pending && name == .index {
          try syncFileSystem()
          pending = false
        }
        // A write-once document is fsynced all the same: one that came back empty after a
        // crash would refuse every later write of its true bytes.
        try writeAtomically(data, to: path, durable: !pending || name.isWriteOnce)
        report.documentsWritten += 1
      }
      if pending { try syncFileSystem() }
      // After index.json, under the lock, best effort; the `.p` folder goes when it is empty.
      for name in change.partialTileRemovals {
        let path = root + "/" + name.path
        if unlink(path) == 0 { rmdir((path as NSString).deletingLastPathComponent) }
      }
    }
  }

  public func remove(_ ids: [ObjectID]) throws {
    for id in ids {
      if unlink(objectPath(id)) != 0 && errno != ENOENT {
        throw TsukuError.io("cannot remove", objectPath(id), errno: errno)
      }
    }
    if !ids.isEmpty, FileManager.default.fileExists(atPath: packs.dir) {
      _ = try packs.remove(Set(ids))
    }
  }

  /// Removes temporary files left by writers that crashed, older than `age` seconds.
  public func sweepTemporaries(olderThan age: TimeInterval = 3600) {
    let fm = FileManager.default
    let base = root + "/objects/sha256"
    let limit = Date().addingTimeInterval(-age)
    for name in (try? fm.contentsOfDirectory(atPath: packs.dir)) ?? [] where name.hasPrefix(".tmp-") {
      let p = packs.dir + "/" + name
      if let d = (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date, d < limit { unlink(p) }
    }
    for fan in (try? fm.contentsOfDirectory(atPath: base)) ?? [] {
      for name in (try? fm.contentsOfDirectory(atPath: base + "/" + fan)) ?? [] where name.hasPrefix(".tmp-") {
        let p = base + "/" + fan + "/" + name
        if let d = (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date, d < limit {
          unlink(p)
        }
      }
    }
  }

  // MARK: - file primitives

  /// The one read of a document or loose blob. A name that is not a regular file (a FIFO, a
  /// socket, a device, a folder) is refused without blocking, as a damaged object of this store
  /// (exit 4, like bytes that do not verify): the next source serves, a cache fetches it again.
  private func readFile(_ path: String, maxSize: Int, what: String) throws -> Data? {
    guard let fd = try FileIO.openIfPresent(path, O_RDONLY, failing: "cannot read", refused: .integrity) else {
      return nil
    }
    defer { close(fd) }
    let size = try FileIO.size(fd, path)
    if size > maxSize { throw tooLarge(what, size: size, max: maxSize) }
    return try FileIO.read(fd, count: size, path)
  }

  /// Through a `.tmp-` file of the same folder (removed by `sweepTemporaries` if a process
  /// dies before the rename); every step is a `CrashPoint`.
  private func writeAtomically(_ data: Data, to path: String, durable: Bool) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    let tmp = "\(dir)/.tmp-\(name.prefix(16))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try AtomicFile.write(
      data, to: path, temporary: tmp, durable: durable, marks: [.created, .wrote, .beforeRenaming, .renamed])
  }

  /// One blob under its name; false when a file of its size already has the name (names are
  /// content hashes). Written to a temporary file of the same folder, created exclusively and
  /// never through a link (`O_EXCL | O_NOFOLLOW`, so it is a new regular file and needs no
  /// check of its own), then renamed into place: 5 system calls a blob. A `durable` blob goes
  /// through `AtomicFile`, fsynced. (An unnamed `O_TMPFILE` linked into place was measured at
  /// about 280 µs per create on ext4, against a few µs for this.)
  private func writeBlob(_ data: Data, id: ObjectID, durable: Bool, checked: Bool) throws -> Bool {
    let path = objectPath(id)
    var st = stat()
    if !checked && stat(path, &st) == 0 && Int(st.st_size) == data.count { return false }
    if durable {
      try writeAtomically(data, to: path, durable: true)
      return true
    }
    let n = Self.temporaries.add(1, ordering: .relaxed).oldValue
    let tmp = "\(root)/objects/sha256/\(id.fanout)/.tmp-\(id.hex.prefix(16))-\(Self.processTag)-\(n)"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
    if fd < 0 { throw TsukuError.io("cannot write", tmp, errno: errno) }
    CrashPoint.step("created \(tmp)")
    let e = data.withUnsafeBytes { FileIO.writeRaw(fd, $0) }
    close(fd)
    if e != 0 {
      unlink(tmp)
      throw TsukuError.io("cannot write", tmp, errno: e)
    }
    CrashPoint.step("wrote \(tmp)")
    if rename(tmp, path) != 0 {
      let e = errno
      unlink(tmp)
      throw TsukuError.io("cannot rename into", path, errno: e)
    }
    CrashPoint.step("renamed \(path)")
    return true
  }

  /// Temporary blob names: `<pid>-<random>` chosen once, and a counter, so no two writers (of
  /// this process or another) pick the same name and no name costs a system call.
  private static let processTag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  private static let temporaries = Atomic<Int>(0)

  /// One durability point for a batch of blobs.
  private func syncFileSystem() throws {
    let fd = try FileIO.open(root, O_RDONLY | O_DIRECTORY, failing: "cannot open")
    defer { close(fd) }
    #if os(Linux)
      if syncfs(fd) != 0 { throw TsukuError.io("cannot sync", root, errno: errno) }
    #else
      sync()
    #endif
  }

  private func makeDirectory(_ path: String) throws { try FileIO.makeDirectories(path) }

  private func withLock<T>(_ body: () throws -> T) throws -> T {
    let path = root + "/.lock"
    let fd = try FileIO.open(path, O_RDWR | O_CREAT, failing: "cannot lock")
    defer { close(fd) }
    let e = FileIO.lockRaw(fd, LOCK_EX)
    if e != 0 { throw TsukuError.io("cannot lock", path, errno: e) }
    defer { flock(fd, LOCK_UN) }
    return try body()
  }
}

#if os(Linux)
  // glibc declares syncfs only under _GNU_SOURCE, which the Glibc module does not set.
  @_silgen_name("syncfs") private func syncfs(_ fd: Int32) -> Int32
#endif

/// Remembers which folders this batch already made, so each is made once.
