// The only file that imports libgit2. Each C call goes raw call -> check -> Swift method.
import CGit2
import Foundation
import Synchronization

/// The store layout committed in a git repository, at its root or in a subfolder, read and
/// written through libgit2 (never through a work tree).
///
/// - The ref (a branch, a tag, a commit sha or anything `git rev-parse` takes; nil for HEAD) is
///   resolved once, when the store is opened: every read sees that commit's tree, however the
///   repository moves afterwards. A branch name wins over a tag of the same name.
/// - Blob sizes are checked against `maxSize` from the object header before a blob is loaded.
/// - `apply` makes one commit per change on the branch (the named one, or HEAD's branch, which
///   may be unborn: then the first commit creates it), committed by `tsuku registry
///   <registry@tsuku.invalid>` with the change's message. It re-reads the branch tip, checks the
///   precondition against that tip's `index.json`, and moves the branch with a compare-and-swap
///   on that tip, so a concurrent publisher gets a `.conflict`. A change that alters nothing
///   makes no commit. Afterwards this store reads the new commit. The work tree and the index
///   of a non-bare repository are not touched: the commit lands on the branch, and
///   `git checkout`/`git reset --hard` brings the files into the work tree.
/// - `remove` is refused: history keeps every blob. `StoreChange.keepOnly` drops blobs from the
///   committed tree instead, and `StoreChange.time` dates the commit. Retention (`move` into
///   the quarantine, `remove(_:from: .quarantine)`) makes one commit per step.
/// - With `enableHistory`, blobs that have left the tip are also served from a window of
///   history (see `GitHistory.swift`), verified exactly like blobs at the tip.
public final class GitStore: ObjectStore {
  /// libgit2's global state, set up once per process.
  private static let libraryReady: Int32 = git_libgit2_init()

  public let location: String
  /// The repository path, absolute.
  public let repositoryPath: String
  /// The folder inside the repository that holds the layout; empty for its root.
  public let subdirectory: String
  /// The ref the store was opened at; nil for HEAD.
  public let ref: String?
  /// The full name (`refs/heads/...`) of the branch `apply` commits to; nil when the ref is
  /// a tag, a commit or a detached HEAD.
  public let branch: String?

  private struct State {
    let repo: Repository
    var tip: Tip
    var history: History?
    /// How often a history map was built by walking commits, and loaded from a cache file.
    var historyWalks = 0
    var historyLoads = 0
  }

  /// The history window and the map of the current tip, once built or loaded.
  private struct History {
    let days: Int
    let cacheDirectory: String?
    var map: GitHistoryMap?
    var fromDisk = false
    /// Set when a cached map led to a bad blob: the next map is walked, not loaded.
    var distrustDisk = false
    /// The commit each blob served from history came from.
    var served = [ObjectID: [UInt8]]()
  }
  private let state: Mutex<State>

  /// Opens the repository at `repository` (a work tree or a bare repository; parent folders
  /// are not searched) at `ref`, with the layout under `subdirectory`.
  public init(repository: String, ref: String? = nil, subdirectory: String? = nil) throws {
    _ = Self.libraryReady
    let path = absolutePath(repository)
    let sub = try normalizeSubdirectory(subdirectory ?? "", repository: path)
    var loc = "git+file://" + path
    if !sub.isEmpty { loc += "?dir=" + sub }
    if let ref { loc += "#" + ref }
    let repo = try Repository(path: path)
    let (commit, branch) = try repo.resolve(ref)
    self.location = loc
    self.repositoryPath = path
    self.subdirectory = sub
    self.ref = ref
    self.branch = branch
    self.state = Mutex(State(repo: repo, tip: try repo.tip(commit)))
  }

  /// Creates an empty repository (no commits) whose HEAD names `branch`; returns its path.
  @discardableResult
  public static func createRepository(at path: String, bare: Bool = false, branch: String = "main")
    throws -> String
  {
    _ = libraryReady
    var opts = git_repository_init_options()
    let version = UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)
    try check(git_repository_init_options_init(&opts, version), "cannot create git repository '\(path)'")
    opts.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | (bare ? GIT_REPOSITORY_INIT_BARE.rawValue : 0)
    var repo: OpaquePointer?
    try branch.withCString { head in
      opts.initial_head = head
      try check(git_repository_init_ext(&repo, path, &opts), "cannot create git repository '\(path)'")
    }
    git_repository_free(repo)
    return absolutePath(path)
  }

  /// The commit the store reads, as 40 hex digits; empty while the branch has no commit.
  public var commitID: String { state.withLock { $0.tip.commit.map(hex) ?? "" } }

  /// The committer time of that commit; the epoch while the branch has no commit.
  public var commitDate: Date { state.withLock { Date(timeIntervalSince1970: TimeInterval($0.tip.time)) } }

  private func layoutPath(_ path: String) -> String { subdirectory.isEmpty ? path : subdirectory + "/" + path }

  /// Also serves blobs that have left the tip, from the commits of the last `days` days of
  /// history (counted back from the newest commit's date, not from today, so an old clone
  /// keeps working offline; 0 means all history). `list` stays tip-only.
  ///
  /// The first such lookup builds a map from sha256 to git blob over that window, once per
  /// tip: it walks the commits newest first and reads each commit's `objects/sha256/<fan>/`
  /// folders, skipping folders whose git tree was already read, so the cost follows the
  /// changes rather than commits x size. With a `cacheDirectory` the map is kept there (one
  /// file per repository, subfolder, window and tip, written atomically) and the next process
  /// only memory-maps it. A blob found there is size-checked before it is loaded and verified
  /// like one at the tip; a map file that leads to a bad blob is rebuilt once before the blob
  /// is refused.
  public func enableHistory(days: Int, cacheDirectory: String?) {
    precondition(days >= 0, "history days must not be negative")
    state.withLock { $0.history = History(days: days, cacheDirectory: cacheDirectory) }
  }

  /// The commit a blob served from history came from (the newest commit of the window that
  /// held it), as 40 hex digits; nil when this store has not served that blob from history.
  public var revision: String? { commitID }

  public func revision(of id: ObjectID) -> String? { historyCommit(for: id) ?? commitID }

  public func historyCommit(for id: ObjectID) -> String? {
    state.withLock { $0.history?.served[id].map(hexBytes) }
  }

  /// How often this store built a history map by walking commits, and loaded one from the
  /// cache folder (for tests and measurements).
  var historyStats: (walks: Int, loads: Int) { state.withLock { ($0.historyWalks, $0.historyLoads) } }

  public func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    let what = "blob '\(id.hex)'"
    let (data, historic) = try state.withLock { s -> (Data?, Bool) in
      (try read(s.repo, s.tip.tree, id.path, what, maxSize), s.history != nil)
    }
    if let data { return try verified(data, as: id, maxSize: maxSize) }
    if historic { return try historyGet(id, maxSize: maxSize) }
    throw missing(id)
  }

  public func contains(_ id: ObjectID) throws -> Bool {
    try state.withLock { s in
      if let tree = s.tip.tree, try s.repo.entry(tree, layoutPath(id.path))?.isBlob ?? false { return true }
      guard s.history != nil else { return false }
      return !(try historyMap(&s)?.candidates(id).isEmpty ?? true)
    }
  }

  /// A blob that is not at the tip, from history: each git blob the map lists for it, newest
  /// first, until one verifies.
  private func historyGet(_ id: ObjectID, maxSize: Int) throws -> Data {
    let what = "blob '\(id.hex)'"
    while true {
      let (candidates, fromDisk, days) = try state.withLock { s in
        (try historyMap(&s)?.candidates(id) ?? [], s.history?.fromDisk ?? false, s.history?.days ?? 0)
      }
      if candidates.isEmpty {
        let window = days == 0 ? "in its history" : "in the last \(days) days of its history"
        throw TsukuError(.notFound, "blob '\(id.hex)' not found in '\(location)', at its tip or \(window)")
      }
      var failure: TsukuError?
      for c in candidates {
        do {
          let data = try state.withLock { s -> Data in
            let oid = gitOID(c.blob)
            let size = try s.repo.size(of: oid)
            if size > maxSize { throw tooLarge(what, size: size, max: maxSize) }
            return try s.repo.blob(oid)
          }
          let good = try verified(data, as: id, maxSize: maxSize)
          state.withLock { $0.history?.served[id] = c.commit }
          return good
        } catch let e as TsukuError {
          let detail = "found in commit '\(hexBytes(c.commit))' of the history"
          failure = failure ?? TsukuError(e.code, e.message, reason: e.reason, details: e.details + [detail])
        }
      }
      // A cached map may be damaged: rebuild it from the commits once before refusing.
      guard fromDisk else { throw failure! }
      state.withLock { s in
        s.history?.map = nil
        s.history?.distrustDisk = true
      }
    }
  }

  /// The history map of the current tip: in memory, else from the cache folder, else built by
  /// walking the window (and then cached). Nil while the branch has no commit.
  private func historyMap(_ s: inout State) throws -> GitHistoryMap? {
    guard var h = s.history, let tip = s.tip.commit else { return nil }
    let tipBytes = oidBytes(tip)
    if let m = h.map, m.tip == tipBytes { return m }
    let key = GitHistoryCache.key(repository: repositoryPath, subdirectory: subdirectory, days: h.days)
    if let dir = h.cacheDirectory, !h.distrustDisk,
      let m = GitHistoryCache.load(GitHistoryCache.path(dir, key: key, tip: hex(tip)), tip: tipBytes, days: h.days)
    {
      (h.map, h.fromDisk) = (m, true)
      s.historyLoads += 1
      s.history = h
      return m
    }
    let m = try s.repo.historyMap(tip: tip, objects: layoutPath("objects/sha256"), days: h.days)
    (h.map, h.fromDisk, h.distrustDisk) = (m, false, false)
    s.historyWalks += 1
    if let dir = h.cacheDirectory { GitHistoryCache.save(m, in: dir, key: key, tip: hex(tip)) }
    s.history = h
    return m
  }

  public func list() throws -> [ObjectID] {
    try state.withLock { s -> [ObjectID] in
      guard let tree = s.tip.tree, let base = try s.repo.entry(tree, layoutPath("objects/sha256")),
        base.isTree
      else { return [] }
      var out = [ObjectID]()
      for fan in try s.repo.entries(of: base.oid) where fan.isTree && fan.name.utf8.count == 2 {
        for blob in try s.repo.entries(of: fan.oid) where blob.isBlob {
          if let id = ObjectID(hex: blob.name), id.fanout == fan.name { out.append(id) }
        }
      }
      return out.sorted()
    }
  }

  public func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    try state.withLock { try read($0.repo, $0.tip.tree, name.path, "'\(name.path)'", maxSize) }
  }

  /// The bytes at a layout path in `tree`, nil when there are none. The size comes from the
  /// object header, so an oversized blob is refused before it is loaded.
  private func read(_ repo: Repository, _ tree: Tree?, _ path: String, _ what: String, _ maxSize: Int) throws -> Data? {
    guard let tree, let entry = try repo.entry(tree, layoutPath(path)) else { return nil }
    if !entry.isBlob {
      throw TsukuError(.integrity, "\(what) in '\(location)' is not a file in the git tree", reason: .malformed)
    }
    let size = try repo.size(of: entry.oid)
    if size > maxSize { throw tooLarge(what, size: size, max: maxSize) }
    return try repo.blob(entry.oid)
  }

  @discardableResult
  public func apply(_ change: StoreChange) throws -> ApplyReport { try apply(change, sources: []) }

  /// One commit for the whole change; the sources the tip lacks are read a batch at a time and
  /// written to the object database as they come, so only their git ids stay in memory.
  ///
  /// Sources are read without holding the store's lock (a source may read from this very
  /// store, as a pack kept from it does); the lock is taken for each batch's git work. The
  /// commit is made on the tip read first, so a publisher that moved the branch in between
  /// makes this one fail with a conflict.
  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    let blobs = ChangeBlobs(change, sources: sources)
    let branch = try publishBranch()
    var report = ApplyReport()
    report.objectsPresent = blobs.duplicates
    // Present: a blob under the name with the same git id as the source's bytes, so a damaged
    // tree is repaired. The sources with a blob under their name are read (a batch at a time)
    // to tell; the blob itself is not (a header read of each loose object costs more).
    var lacking = [Int]()
    var candidates = [(Int, git_oid)]()
    let parent = try state.withLock { s -> git_oid? in
      let (parent, base) = try s.repo.branchTip(branch)
      let index = try read(s.repo, base, DocumentName.index.path, "'index.json'", .max)
      try checkPrecondition(change.precondition, current: index, location: location)
      // One fan-out folder at a time: each folder's tree is read once, not once per blob.
      var byFan = [String: [Int]]()
      for k in blobs.indices { byFan[blobs[k].id.fanout, default: []].append(k) }
      let objects = layoutPath("objects/sha256")
      for (fan, ks) in byFan {
        var folder: Tree?
        if let base, let e = try s.repo.entry(base, objects + "/" + fan), e.isTree { folder = try s.repo.tree(e.oid) }
        for k in ks {
          if let folder, let old = s.repo.entry(folder, named: blobs[k].id.hex), old.isBlob {
            candidates.append((k, old.oid))
          } else {
            lacking.append(k)
          }
        }
      }
      lacking.sort()
      candidates.sort { $0.0 < $1.0 }
      return parent
    }
    try BlobSource.batches(candidates.lazy.map { blobs[$0.0] }, checked: false) { batch in
      try state.withLock { s in
        for (c, data) in batch {
          let (k, oid) = candidates[c]
          if same(oid, try s.repo.hash(data)) { report.objectsPresent += 1 } else { lacking.append(k) }
        }
      }
    }
    // New blobs by name only: their folders are built one fan-out folder at a time below.
    var added = [(ObjectID, git_oid)]()
    try BlobSource.batches(lacking.lazy.map { blobs[$0] }) { batch in
      try state.withLock { s in
        for (i, data) in batch {
          added.append((blobs[lacking[i]].id, try s.repo.createBlob(data)))
          report.objectsWritten += 1
          report.bytesWritten += data.count
        }
      }
    }
    return try state.withLock { s in
      let base = try s.repo.tip(parent).tree
      var files = [(String, TreeEdit)]()
      for (name, data) in change.orderedDocuments {
        files.append((layoutPath(name.path), .blob(try s.repo.createBlob(data))))
        report.documentsWritten += 1
      }
      var dropped = [(fan: String, name: String)]()
      if let keep = change.keepOnly, let base {
        dropped = try unreferenced(s.repo, base, keeping: keep.union(blobs.map(\.id)))
        report.objectsPruned = dropped.count
      }
      files += try fanFolders(s.repo, base, added: added, dropped: dropped)
      report.commit = try commit(
        &s, files, on: branch, parent: parent, base: base, message: change.message, time: change.time)
      return report
    }
  }

  /// The blobs under `objects/sha256/<fan>/` in `tree` that are not in `keep`, as (fan, name).
  private func unreferenced(_ repo: Repository, _ tree: Tree, keeping keep: Set<ObjectID>) throws
    -> [(fan: String, name: String)]
  {
    guard let base = try repo.entry(tree, layoutPath("objects/sha256")), base.isTree else { return [] }
    var out = [(fan: String, name: String)]()
    for fan in try repo.entries(of: base.oid) where fan.isTree && fan.name.utf8.count == 2 {
      for blob in try repo.entries(of: fan.oid) where blob.isBlob {
        if let id = ObjectID(hex: blob.name), id.fanout == fan.name, keep.contains(id) { continue }
        out.append((fan.name, blob.name))
      }
    }
    return out
  }

  /// The fan-out folders `objects/sha256/<fan>` that change, each written as a tree of its own
  /// (its entries in `base`, plus `added`, minus `dropped`): one folder's names in memory at a
  /// time, rather than a path per blob. A folder left empty is removed.
  private func fanFolders(
    _ repo: Repository, _ base: Tree?, added: [(ObjectID, git_oid)], dropped: [(fan: String, name: String)]
  ) throws -> [(String, TreeEdit)] {
    if added.isEmpty && dropped.isEmpty { return [] }
    let sorted = added.sorted { $0.0 < $1.0 }
    var byFan = [String: (added: Range<Int>, dropped: [String])]()
    var start = 0
    while start < sorted.count {
      let fan = sorted[start].0.fanout
      var end = start + 1
      while end < sorted.count && sorted[end].0.fanout == fan { end += 1 }
      byFan[fan] = (start..<end, [])
      start = end
    }
    for d in dropped { byFan[d.fan, default: (0..<0, [])].dropped.append(d.name) }
    let objects = layoutPath("objects/sha256")
    var out = [(String, TreeEdit)]()
    for fan in byFan.keys.sorted() {
      let (range, drops) = byFan[fan]!
      var folder: Tree?
      if let base, let e = try repo.entry(base, objects + "/" + fan), e.isTree { folder = try repo.tree(e.oid) }
      let edits =
        sorted[range].map { (ArraySlice([$0.0.hex]), TreeEdit.blob($0.1)) }
        + drops.map { (ArraySlice([$0]), TreeEdit.remove) }
      let (oid, count) = try repo.writeTree(base: folder, files: edits)
      out.append((objects + "/" + fan, count == 0 ? .remove : .tree(oid)))
    }
    return out
  }

  public func remove(_ ids: [ObjectID]) throws {
    if ids.isEmpty { return }
    throw TsukuError(.usage, "the git store '\(location)' cannot remove blobs: history keeps every blob")
  }

  /// `modified` is the committer time of the oldest commit of the unbroken first-parent run
  /// from the tip that holds the blob in the area (a walk of the history that reads only the
  /// fan-out folders whose git tree changed); sizes come from the object headers.
  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    try state.withLock { s in
      guard let tree = s.tip.tree, let tip = s.tip.commit else { return [] }
      let folder = layoutPath(area.folder)
      let blobs = try s.repo.blobs(in: tree, folder: folder)
      let times = dated ? try s.repo.arrivals(of: Set(blobs.keys), tip: tip, folder: folder) : [:]
      return try blobs.map { id, oid in
        StoredObject(id: id, size: try s.repo.size(of: oid), modified: times[id].map { Date(timeIntervalSince1970: TimeInterval($0)) })
      }.sorted { $0.id < $1.id }
    }
  }

  /// One commit on the branch that moves the tree entries (the git blobs stay as they are);
  /// dated now, which is when they entered the new area.
  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if from == to || ids.isEmpty { return 0 }
    return try state.withLock { s in
      let branch = try publishBranch()
      let (parent, base) = try s.repo.branchTip(branch)
      guard let base else { return 0 }
      var files = [(String, TreeEdit)]()
      for id in Set(ids).sorted() {
        let src = layoutPath(from.path(id))
        guard let e = try s.repo.entry(base, src), e.isBlob else { continue }
        files += [(src, .remove), (layoutPath(to.path(id)), .blob(e.oid))]
      }
      let n = files.count / 2
      if n == 0 { return 0 }
      let message = to == .quarantine ? "quarantine \(n) blobs" : "restore \(n) blobs from the quarantine"
      _ = try commit(&s, files, on: branch, parent: parent, base: base, message: message, time: nil)
      return n
    }
  }

  /// `.quarantine`: one commit that drops the entries (history keeps them); `.live` is refused
  /// like `remove`.
  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if area == .live { return try remove(ids) }
    if ids.isEmpty { return }
    try state.withLock { s in
      let branch = try publishBranch()
      let (parent, base) = try s.repo.branchTip(branch)
      guard let base else { return }
      var files = [(String, TreeEdit)]()
      for id in Set(ids).sorted() where try s.repo.entry(base, layoutPath(area.path(id))) != nil {
        files.append((layoutPath(area.path(id)), .remove))
      }
      if files.isEmpty { return }
      _ = try commit(
        &s, files, on: branch, parent: parent, base: base, message: "delete \(files.count) quarantined blobs", time: nil)
    }
  }

  /// Test hook: commits raw bytes at layout paths (relative to the subfolder), bypassing every
  /// check, as a careless or malicious committer would. Returns the commit.
  @discardableResult
  func commitRaw(_ files: [(String, Data)], message: String = "raw commit") throws -> String? {
    try state.withLock { s in
      let branch = try publishBranch()
      let (parent, base) = try s.repo.branchTip(branch)
      let blobs = try files.map { (layoutPath($0.0), TreeEdit.blob(try s.repo.createBlob($0.1))) }
      return try commit(&s, blobs, on: branch, parent: parent, base: base, message: message, time: nil)
    }
  }

  private func publishBranch() throws -> String {
    if let branch { return branch }
    if let ref { throw TsukuError(.usage, "cannot publish to '\(location)': ref '\(ref)' is not a branch") }
    throw TsukuError(.usage, "cannot publish to '\(location)': HEAD is detached, name a branch with '#BRANCH'")
  }

  /// Builds the tree with `files` put in or taken out, commits it on top of `parent`, dated
  /// `time` (nil: now), and moves the branch if it still points there. Nil when the tree did
  /// not change (no commit is made).
  private func commit(
    _ s: inout State, _ files: [(String, TreeEdit)], on branch: String, parent: git_oid?, base: Tree?,
    message: String, time: Date?
  ) throws -> String? {
    let split = files.map { (ArraySlice($0.0.split(separator: "/").map(String.init)), $0.1) }
    let treeID = split.isEmpty ? nil : try s.repo.writeTree(base: base, files: split).oid
    guard let treeID, base.map({ !same($0.oid, treeID) }) ?? true else {
      s.tip = try s.repo.tip(parent)
      return nil
    }
    let id = try s.repo.commit(tree: treeID, parent: parent, message: message, time: time)
    let rc = s.repo.moveBranch(branch, to: id, from: parent, log: "tsuku: " + message)
    if [GIT_EMODIFIED, GIT_EEXISTS, GIT_ELOCKED, GIT_ENOTFOUND].contains(where: { $0.rawValue == rc }) {
      throw TsukuError(
        .conflict,
        "branch '\(branch)' in '\(repositoryPath)' moved while publishing; nothing was published, run it again")
    }
    try check(rc, "cannot update branch '\(branch)' in '\(repositoryPath)'")
    s.tip = try s.repo.tip(id)
    return hex(id)
  }
}

// MARK: - libgit2 wrappers

/// The last libgit2 error as one line.
private func lastGitError() -> String {
  guard let e = git_error_last(), let m = e.pointee.message else { return "unknown libgit2 error" }
  return String(cString: m).split(whereSeparator: \.isNewline).joined(separator: " ")
}

private func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
  if rc >= 0 { return }
  throw TsukuError(.other, "\(what()): \(lastGitError())")
}

private func hex(_ oid: git_oid) -> String {
  withUnsafePointer(to: oid) { String(cString: git_oid_tostr_s($0)) }
}

/// The 20 raw bytes of an id, and back.
private func oidBytes(_ oid: git_oid) -> [UInt8] {
  withUnsafePointer(to: oid) { Array(UnsafeBufferPointer(start: tsuku_git_oid_bytes($0), count: Int(GIT_OID_RAWSZ))) }
}

private func gitOID(_ bytes: [UInt8]) -> git_oid {
  var oid = git_oid()
  tsuku_git_oid_set(&oid, bytes)
  return oid
}

private func hexBytes(_ bytes: [UInt8]) -> String { hex(gitOID(bytes)) }

private func same(_ a: git_oid, _ b: git_oid) -> Bool {
  withUnsafePointer(to: a) { pa in withUnsafePointer(to: b) { git_oid_equal(pa, $0) != 0 } }
}

/// A loaded git tree, freed with its owner.
private final class Tree {
  let pointer: OpaquePointer
  let oid: git_oid
  private let owner: Repository  // freed after its trees
  init(_ pointer: OpaquePointer, owner: Repository) {
    self.pointer = pointer
    self.oid = git_tree_id(pointer).pointee
    self.owner = owner
  }
  deinit { git_tree_free(pointer) }
}

/// The resolved commit and its tree; both nil while the branch is unborn.
private struct Tip {
  var commit: git_oid?
  var tree: Tree?
  var time: Int64
}

/// What a commit does at one path: put a blob or a folder there, or take it out.
private enum TreeEdit {
  case blob(git_oid)
  case tree(git_oid)
  case remove
}

/// A tree entry, copied out of libgit2.
private struct Entry {
  var name: String
  var oid: git_oid
  var type: git_object_t
  init(_ e: OpaquePointer) {
    (name, oid, type) = (String(cString: git_tree_entry_name(e)), git_tree_entry_id(e).pointee, git_tree_entry_type(e))
  }
  var isBlob: Bool { type == GIT_OBJECT_BLOB }
  var isTree: Bool { type == GIT_OBJECT_TREE }
}

/// One open repository and its object database. Not thread-safe: only used under the lock.
private final class Repository {
  let repo: OpaquePointer
  let odb: OpaquePointer
  let path: String

  init(path: String) throws {
    self.path = path
    var r: OpaquePointer?
    let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
    try check(git_repository_open_ext(&r, path, flags, nil), "cannot open git repository '\(path)'")
    var o: OpaquePointer?
    let rc = git_repository_odb(&o, r)
    if rc < 0 { git_repository_free(r) }
    try check(rc, "cannot open the objects of git repository '\(path)'")
    (repo, odb) = (r!, o!)
  }

  deinit {
    git_odb_free(odb)
    git_repository_free(repo)
  }

  /// The commit `ref` names (nil: unborn) and the branch it is, if it is one.
  func resolve(_ ref: String?) throws -> (git_oid?, String?) {
    guard let ref else {
      var head: OpaquePointer?
      try check(git_reference_lookup(&head, repo, "HEAD"), "cannot read HEAD of '\(path)'")
      defer { git_reference_free(head) }
      if git_reference_type(head) == GIT_REFERENCE_SYMBOLIC, let target = git_reference_symbolic_target(head) {
        let name = String(cString: target)
        return (try branchTip(name).0, name.hasPrefix("refs/heads/") ? name : nil)
      }
      return (try peelToCommit("HEAD"), nil)
    }
    let full = ref.hasPrefix("refs/heads/") ? ref : "refs/heads/" + ref
    var valid: Int32 = 0
    try check(git_reference_name_is_valid(&valid, full), "cannot check ref '\(ref)'")
    if valid == 1 {
      var oid = git_oid()
      if git_reference_name_to_id(&oid, repo, full) == 0 { return (try peelToCommit(full), full) }
    }
    var obj: OpaquePointer?
    let rc = git_revparse_single(&obj, repo, ref)
    git_object_free(obj)
    if rc == 0 { return (try peelToCommit(ref), nil) }
    if valid == 1 && git_repository_head_unborn(repo) == 1 { return (nil, full) }
    if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EINVALIDSPEC.rawValue {
      throw TsukuError(.notFound, "ref '\(ref)' not found in '\(path)'")
    }
    try check(rc, "cannot resolve ref '\(ref)' in '\(path)'")
    return (nil, nil)
  }

  private func peelToCommit(_ spec: String) throws -> git_oid {
    var obj: OpaquePointer?
    try check(git_revparse_single(&obj, repo, spec), "cannot resolve ref '\(spec)' in '\(path)'")
    defer { git_object_free(obj) }
    var commit: OpaquePointer?
    try check(git_object_peel(&commit, obj, GIT_OBJECT_COMMIT), "ref '\(spec)' in '\(path)' does not name a commit")
    defer { git_object_free(commit) }
    return git_object_id(commit).pointee
  }

  /// The current tip of a branch, read now (nil for an unborn branch), and its tree.
  func branchTip(_ branch: String) throws -> (git_oid?, Tree?) {
    var oid = git_oid()
    let rc = git_reference_name_to_id(&oid, repo, branch)
    if rc == GIT_ENOTFOUND.rawValue { return (nil, nil) }
    try check(rc, "cannot read branch '\(branch)' in '\(path)'")
    return (oid, try tip(oid).tree)
  }

  func tip(_ commit: git_oid?) throws -> Tip {
    guard var oid = commit else { return Tip(commit: nil, tree: nil, time: 0) }
    var c: OpaquePointer?
    try check(git_commit_lookup(&c, repo, &oid), "cannot read commit '\(hex(oid))' in '\(path)'")
    defer { git_commit_free(c) }
    var t: OpaquePointer?
    try check(git_commit_tree(&t, c), "cannot read the tree of commit '\(hex(oid))' in '\(path)'")
    return Tip(commit: oid, tree: Tree(t!, owner: self), time: Int64(git_commit_time(c)))
  }

  /// The entry at `path` in `tree`; nil when there is none.
  func entry(_ tree: Tree, _ path: String) throws -> Entry? {
    var e: OpaquePointer?
    let rc = git_tree_entry_bypath(&e, tree.pointer, path)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try check(rc, "cannot read '\(path)' in '\(self.path)'")
    defer { git_tree_entry_free(e) }
    return Entry(e!)
  }

  /// The entry named `name` directly in `tree` (a binary search; nothing is read); nil when
  /// there is none.
  func entry(_ tree: Tree, named name: String) -> Entry? {
    git_tree_entry_byname(tree.pointer, name).map(Entry.init)
  }

  /// The entries of the tree `oid`.
  func entries(of oid: git_oid) throws -> [Entry] {
    var id = oid
    var t: OpaquePointer?
    try check(git_tree_lookup(&t, repo, &id), "cannot read tree '\(hex(oid))' in '\(path)'")
    defer { git_tree_free(t) }
    return (0..<git_tree_entrycount(t)).compactMap { git_tree_entry_byindex(t, $0).map(Entry.init) }
  }

  /// The size of an object, from its header (the object is not loaded).
  func size(of id: git_oid) throws -> Int {
    var oid = id
    var size = 0
    var type = GIT_OBJECT_INVALID
    try check(git_odb_read_header(&size, &type, odb, &oid), "cannot read object '\(hex(id))' in '\(path)'")
    return size
  }

  func blob(_ id: git_oid) throws -> Data {
    var oid = id
    var blob: OpaquePointer?
    try check(git_blob_lookup(&blob, repo, &oid), "cannot read blob '\(hex(id))' in '\(path)'")
    defer { git_blob_free(blob) }
    let count = Int(git_blob_rawsize(blob))
    guard count > 0, let bytes = git_blob_rawcontent(blob) else { return Data() }
    return Data(bytes: bytes, count: count)
  }

  /// The git id the bytes would have as a blob, without writing them.
  func hash(_ data: Data) throws -> git_oid {
    var oid = git_oid()
    try data.withUnsafeBytes { buf in
      try check(git_odb_hash(&oid, buf.baseAddress, buf.count, GIT_OBJECT_BLOB), "cannot hash a blob")
    }
    return oid
  }

  /// The tree `oid`, loaded.
  func tree(_ oid: git_oid) throws -> Tree {
    var id = oid
    var t: OpaquePointer?
    try check(git_tree_lookup(&t, repo, &id), "cannot read tree '\(hex(oid))' in '\(path)'")
    return Tree(t!, owner: self)
  }

  func createBlob(_ data: Data) throws -> git_oid {
    var oid = git_oid()
    try data.withUnsafeBytes { buf in
      try check(git_blob_create_from_buffer(&oid, repo, buf.baseAddress, buf.count), "cannot write a blob to '\(path)'")
    }
    return oid
  }

  /// Writes `base` with `files` (path components, edit) put in or taken out, one tree builder
  /// per changed folder, so the cost follows the change, not the size of the store. A folder
  /// left empty is dropped. Returns the tree and its entry count.
  func writeTree(base: Tree?, files: [(ArraySlice<String>, TreeEdit)]) throws -> (oid: git_oid, count: Int) {
    var bld: OpaquePointer?
    try check(git_treebuilder_new(&bld, repo, base?.pointer), "cannot build a tree in '\(path)'")
    defer { git_treebuilder_free(bld) }
    func drop(_ name: String) throws {
      if git_treebuilder_get(bld, name) == nil { return }
      try check(git_treebuilder_remove(bld, name), "cannot remove '\(name)' from a tree in '\(path)'")
    }
    let groups = Dictionary(grouping: files, by: { $0.0.first ?? "" })
    for (name, group) in groups {
      let what = "cannot add '\(name)' to a tree in '\(path)'"
      for (parts, edit) in group where parts.count == 1 {
        switch edit {
        case .remove: try drop(name)
        case .blob(var oid): try check(git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_BLOB), what)
        case .tree(var oid): try check(git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_TREE), what)
        }
      }
      let deeper = group.filter { $0.0.count > 1 }.map { ($0.0.dropFirst(), $0.1) }
      if deeper.isEmpty { continue }
      var sub: Tree?
      if let base, let e = git_tree_entry_byname(base.pointer, name), git_tree_entry_type(e) == GIT_OBJECT_TREE {
        sub = try tree(git_tree_entry_id(e).pointee)
      }
      if sub == nil && deeper.allSatisfy({ if case .remove = $0.1 { true } else { false } }) { continue }
      var (oid, count) = try writeTree(base: sub, files: deeper)
      if count == 0 {
        try drop(name)
      } else {
        try check(git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_TREE), what)
      }
    }
    let count = Int(git_treebuilder_entrycount(bld))
    var out = git_oid()
    try check(git_treebuilder_write(&out, bld), "cannot write a tree to '\(path)'")
    return (out, count)
  }

  /// The history map of the commits reachable from `tip` whose committer time is within
  /// `days` of the newest one (0: every commit): walked newest first (time order, stopping at
  /// the first older commit), reading `objects/<fan>/` folders whose git tree was not read yet.
  func historyMap(tip: git_oid, objects: String, days: Int) throws -> GitHistoryMap {
    let what = "cannot walk the history of '\(path)'"
    var walk: OpaquePointer?
    try check(git_revwalk_new(&walk, repo), what)
    defer { git_revwalk_free(walk) }
    try check(git_revwalk_sorting(walk, GIT_SORT_TIME.rawValue), what)
    var start = tip
    try check(git_revwalk_push(walk, &start), what)
    var builder = GitHistoryMap.Builder(tip: oidBytes(tip), days: days)
    var seen = Set<[UInt8]>()
    var cutoff: Int64?
    var oid = git_oid()
    while true {
      let rc = git_revwalk_next(&oid, walk)
      if rc == GIT_ITEROVER.rawValue { break }
      try check(rc, what)
      let commit = try self.tip(oid)
      if cutoff == nil {
        builder.newest = commit.time
        cutoff = days == 0 ? Int64.min : commit.time - Int64(days) * 86400
      }
      if commit.time < cutoff! { break }
      guard let tree = commit.tree, let base = try entry(tree, objects), base.isTree,
        seen.insert(oidBytes(base.oid)).inserted
      else { continue }
      var number: UInt32?
      for fan in try entries(of: base.oid) where fan.isTree && fan.name.utf8.count == 2 {
        guard seen.insert(oidBytes(fan.oid)).inserted else { continue }
        for blob in try entries(of: fan.oid) where blob.isBlob {
          guard let id = ObjectID(hex: blob.name), id.fanout == fan.name else { continue }
          let n = number ?? builder.commit(oidBytes(oid))
          number = n
          builder.add(id, blob: oidBytes(blob.oid), commit: n)
        }
      }
    }
    return builder.finish()
  }

  /// The blobs under `folder/<fan>/` in `tree`, by name: their git blob ids.
  func blobs(in tree: Tree, folder: String) throws -> [ObjectID: git_oid] {
    guard let base = try entry(tree, folder), base.isTree else { return [:] }
    var out = [ObjectID: git_oid]()
    for fan in try entries(of: base.oid) where fan.isTree && fan.name.utf8.count == 2 {
      for blob in try entries(of: fan.oid) where blob.isBlob {
        if let id = ObjectID(hex: blob.name), id.fanout == fan.name { out[id] = blob.oid }
      }
    }
    return out
  }

  /// The first parent of a commit; nil for a root commit.
  func firstParent(of commit: git_oid) throws -> git_oid? {
    var oid = commit
    var c: OpaquePointer?
    try check(git_commit_lookup(&c, repo, &oid), "cannot read commit '\(hex(commit))' in '\(path)'")
    defer { git_commit_free(c) }
    guard git_commit_parentcount(c) > 0, let p = git_commit_parent_id(c, 0) else { return nil }
    return p.pointee
  }

  /// For each of `ids` (held under `folder` at `tip`), the committer time of the oldest commit
  /// of the unbroken first-parent run from `tip` that holds it there. Walks back only while
  /// some blob is still present, and reads only the fan-out folders whose tree changed.
  func arrivals(of ids: Set<ObjectID>, tip: git_oid, folder: String) throws -> [ObjectID: Int64] {
    var pending = Dictionary(grouping: ids, by: \.fanout).mapValues(Set.init)
    var out = [ObjectID: Int64]()
    func fans(_ t: Tip) throws -> (git_oid?, [String: git_oid]) {
      guard let tree = t.tree, let f = try entry(tree, folder), f.isTree else { return (nil, [:]) }
      var m = [String: git_oid]()
      for e in try entries(of: f.oid) where e.isTree && e.name.utf8.count == 2 { m[e.name] = e.oid }
      return (f.oid, m)
    }
    var current = try self.tip(tip)
    var (folderID, fanIDs) = try fans(current)
    while !pending.isEmpty, let parentID = try firstParent(of: current.commit!) {
      let parent = try self.tip(parentID)
      if let t = parent.tree, let f = try entry(t, folder), f.isTree, let cur = folderID, same(f.oid, cur) {
        current = parent
        continue
      }
      let (pFolder, pFans) = try fans(parent)
      for (fan, ids) in pending {
        if let a = pFans[fan], let b = fanIDs[fan], same(a, b) { continue }
        let present = Set(try pFans[fan].map { try entries(of: $0).filter(\.isBlob).map(\.name) } ?? [])
        for id in ids where !present.contains(id.hex) {
          out[id] = current.time
          pending[fan]?.remove(id)
        }
        if pending[fan]?.isEmpty ?? false { pending[fan] = nil }
      }
      (folderID, fanIDs, current) = (pFolder, pFans, parent)
    }
    for id in pending.values.joined() { out[id] = current.time }
    return out
  }

  /// Writes a commit of `tree` on `parent` by tsuku registry, dated `time` (nil: now, UTC),
  /// without moving any ref.
  func commit(tree: git_oid, parent: git_oid?, message: String, time: Date?) throws -> git_oid {
    var sig: UnsafeMutablePointer<git_signature>?
    let (name, email) = ("tsuku registry", "registry@tsuku.invalid")
    if let time {
      let seconds = git_time_t(time.timeIntervalSince1970.rounded(.down))
      try check(git_signature_new(&sig, name, email, seconds, 0), "cannot make a commit signature")
    } else {
      try check(git_signature_now(&sig, name, email), "cannot make a commit signature")
    }
    defer { git_signature_free(sig) }
    var treeID = tree
    var t: OpaquePointer?
    try check(git_tree_lookup(&t, repo, &treeID), "cannot read tree '\(hex(tree))' in '\(path)'")
    defer { git_tree_free(t) }
    var parents: [OpaquePointer?] = []
    defer { for p in parents { git_commit_free(p) } }
    if var p = parent {
      var c: OpaquePointer?
      try check(git_commit_lookup(&c, repo, &p), "cannot read commit '\(hex(p))' in '\(path)'")
      parents.append(c)
    }
    let text = message.hasSuffix("\n") ? message : message + "\n"
    var out = git_oid()
    try parents.withUnsafeMutableBufferPointer { ps in
      try check(
        git_commit_create(&out, repo, nil, sig, sig, nil, text, t, ps.count, ps.baseAddress),
        "cannot commit to '\(path)'")
    }
    return out
  }

  /// Points `branch` at `id` if it still points at `old` (or, for nil, does not exist yet).
  /// Returns libgit2's code: `GIT_EMODIFIED`/`GIT_EEXISTS`/`GIT_ELOCKED` mean someone moved it.
  func moveBranch(_ branch: String, to id: git_oid, from old: git_oid?, log: String) -> Int32 {
    var new = id
    var ref: OpaquePointer?
    defer { git_reference_free(ref) }
    guard var old else { return git_reference_create(&ref, repo, branch, &new, 0, log) }
    return git_reference_create_matching(&ref, repo, branch, &new, 1, &old, log)
  }
}
