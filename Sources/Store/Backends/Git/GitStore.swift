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

  struct State {
    let repo: GitRepository
    var tip: GitTip
    var history: History?
    /// How often a history map was built by walking commits, and loaded from a cache file.
    var historyWalks = 0
    var historyLoads = 0
    /// What the last walk read.
    var lastWalk = GitHistoryWalkStats()
  }

  /// The history window and the map of the current tip, once built or loaded.
  struct History {
    let days: Int
    let cacheDirectory: String?
    /// The most tree entries one walk loads.
    let limits: GitHistoryLimits
    var map: GitHistoryMap?
    var fromDisk = false
    /// Set when a cached map led to a bad blob: the next map is walked, not loaded.
    var distrustDisk = false
    /// The commit each blob served from history came from.
    var served = [ObjectID: [UInt8]]()
  }
  let state: Mutex<State>

  /// Opens the repository at `repository` (a work tree or a bare repository; parent folders
  /// are not searched) at `ref`, with the layout under `subdirectory`.
  public init(repository: String, ref: String? = nil, subdirectory: String? = nil) throws {
    let path = absolutePath(repository)
    let sub = try normalizeSubdirectory(subdirectory ?? "", repository: path)
    var loc = "git+file://" + path
    if !sub.isEmpty { loc += "?dir=" + sub }
    if let ref { loc += "#" + ref }
    let repo = try GitRepository(path: path)
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
    try GitRepository.create(at: path, bare: bare, branch: branch)
    return absolutePath(path)
  }

  /// The commit the store reads, as 40 hex digits; empty while the branch has no commit.
  public var commitID: String { state.withLock { $0.tip.commit.map(hex) ?? "" } }

  /// The committer time of that commit; the epoch while the branch has no commit.
  public var commitDate: Date { state.withLock { Date(timeIntervalSince1970: TimeInterval($0.tip.time)) } }

  func layoutPath(_ path: String) -> String { subdirectory.isEmpty ? path : subdirectory + "/" + path }

  /// The commit the store reads (`commitID`).
  public var revision: String? { commitID }

  public func revision(of id: ObjectID) -> String? { historyCommit(for: id) ?? commitID }

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
  func read(_ repo: GitRepository, _ tree: GitTree?, _ path: String, _ what: String, _ maxSize: Int) throws -> Data? {
    guard let tree, let entry = try repo.entry(tree, layoutPath(path)) else { return nil }
    if !entry.isBlob {
      throw TsukuError(.integrity, "\(what) in '\(location)' is not a file in the git tree", reason: .malformed)
    }
    let size = try repo.size(of: entry.oid)
    if size > maxSize { throw tooLarge(what, size: size, max: maxSize) }
    return try repo.blob(entry.oid)
  }

  public func remove(_ ids: [ObjectID]) throws {
    if ids.isEmpty { return }
    throw TsukuError(.usage, "the git store '\(location)' cannot remove blobs: history keeps every blob")
  }
}
