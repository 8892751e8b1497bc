// The history map's walk over libgit2: a time-ordered revision walk that loads each tree it
// needs once, keeps only what a fan-out folder adds to the version of it read before, and
// stops at a limit of tree entries loaded.
import CGit2
import Foundation

/// What one walk of history did (for tests and measurements).
struct GitHistoryWalkStats: Equatable, Sendable {
  /// Commits of the window the walk read.
  var commits = 0
  /// Entries of the git trees it loaded, all trees together.
  var entries = 0
  /// Rows it handed to the map builder (before the builder drops repeated pairs).
  var rows = 0
}

/// The most tree entries one walk of history loads: in all, and from the versions of one
/// fan-out folder. Past the first the walk stops; past the second it reads no more versions
/// of that folder and goes on with the others.
struct GitHistoryLimits: Equatable, Sendable {
  var total: Int
  var perFolder: Int
  /// 2^20 in all (about 100 MB of trees), 2^15 per folder: enough for a store of thousands of
  /// blobs changed in thousands of commits, and a bound on what a repository crafted with huge
  /// or ever-growing folders can cost.
  static let standard = GitHistoryLimits(total: 1 << 20, perFolder: 1 << 15)
}

/// A name and the git blob that held it.
private struct Pair: Hashable {
  var id: ObjectID
  var blob: GitHistoryMap.OIDKey
}

private func key(_ oid: git_oid) -> GitHistoryMap.OIDKey {
  withUnsafePointer(to: oid) { GitHistoryMap.OIDKey(tsuku_git_oid_bytes($0)) }
}

/// The value of two lowercase hex digits (a fan-out folder's name); nil for anything else.
private func fanValue(_ name: UnsafePointer<CChar>) -> Int? {
  func digit(_ c: CChar) -> Int? {
    switch UInt8(bitPattern: c) {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(UInt8(bitPattern: c) - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(UInt8(bitPattern: c) - UInt8(ascii: "a") + 10)
    default: nil
    }
  }
  guard let hi = digit(name[0]), let lo = digit(name[1]), name[2] == 0 else { return nil }
  return hi << 4 | lo
}

extension GitRepository {
  /// The history map of the commits reachable from `tip` whose committer time is within
  /// `days` of the newest one (0: every commit), walked newest first (children before
  /// parents, then time order; stopping at the first older commit).
  ///
  /// What it costs: a commit costs its header. A folder above `objects` is loaded only when
  /// its id differs from the one the previous commit had there; `objects` and each fan-out
  /// folder only when that tree id was never read. A fan-out folder's entries are compared
  /// with the version of the same folder read before, and only the (name, git blob) pairs it
  /// adds become rows, so memory follows what history adds, not the size of the trees. Tree
  /// entries loaded are counted against `limits`: a fan-out folder whose versions pass
  /// `perFolder` is not read further back (the others are), and the walk stops at `total`; the
  /// map records both. Without them a folder that gains one entry per commit costs the square
  /// of the commit count (each version is a distinct tree as large as the folder), however
  /// small the repository is on disk.
  func historyMap(tip: git_oid, objects: String, days: Int, limits: GitHistoryLimits) throws -> (
    GitHistoryMap, GitHistoryWalkStats
  ) {
    let what = "cannot walk the history of '\(path)'"
    var walk: OpaquePointer?
    try gitCheck(tsuku_git_revwalk_new(&walk, repo), what)
    defer { tsuku_git_revwalk_free(walk) }
    // Children before parents, then by time: commits that share a timestamp still come newest
    // first, so each folder is compared with its next newer version.
    try gitCheck(tsuku_git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue), what)
    var start = tip
    try gitCheck(tsuku_git_revwalk_push(walk, &start), what)
    var builder = GitHistoryMap.Builder(tip: oidBytes(tip), days: days)
    var stats = GitHistoryWalkStats()
    let parts = objects.split(separator: "/").map(String.init)
    // Per level of `parts`, the last tree id loaded there and the id it leads to.
    var levels = [(tree: git_oid, child: git_oid?)?](repeating: nil, count: parts.count)
    var seen = Set<GitHistoryMap.OIDKey>()  // `objects` and fan-out trees already read
    var previous = [Set<Pair>](repeating: [], count: 256)  // per fan-out folder, the version read last
    var cutoff: Int64?
    var stopped = false
    var oid = git_oid()

    var fanEntries = [Int](repeating: 0, count: 256)
    var fanCut = [Bool](repeating: false, count: 256)

    /// Loads a tree and counts its entries against the limits; nil when it would pass one.
    func load(_ id: git_oid, fan: Int? = nil) throws -> GitTree? {
      let tree = try self.tree(id)
      let count = Int(tsuku_git_tree_entrycount(tree.pointer))
      if stats.entries + count > limits.total {
        stopped = true
        return nil
      }
      if let fan {
        if fanEntries[fan] + count > limits.perFolder {
          fanCut[fan] = true
          if builder.stoppedAfter == 0 { builder.stoppedAfter = stats.commits }
          return nil
        }
        fanEntries[fan] += count
      }
      stats.entries += count
      return tree
    }

    walking: while true {
      let rc = tsuku_git_revwalk_next(&oid, walk)
      if rc == GIT_ITEROVER.rawValue { break }
      try gitCheck(rc, what)
      let (time, root) = try commitHeader(oid)
      if cutoff == nil {
        builder.newest = time
        cutoff = days == 0 ? Int64.min : time - Int64(days) * 86400
      }
      if time < cutoff! { break }
      stats.commits += 1
      var at: git_oid? = root
      for (i, name) in parts.enumerated() {
        guard let t = at else { break }
        if let l = levels[i], same(l.tree, t) {
          at = l.child
          continue
        }
        guard let tree = try load(t) else { break walking }
        at = entry(tree, named: name).flatMap { $0.isTree ? $0.oid : nil }
        levels[i] = (t, at)
      }
      guard let objectsID = at, seen.insert(key(objectsID)).inserted else { continue }
      guard let base = try load(objectsID) else { break walking }
      var number: UInt32?
      for i in 0..<tsuku_git_tree_entrycount(base.pointer) {
        guard let e = tsuku_git_tree_entry_byindex(base.pointer, i), tsuku_git_tree_entry_type(e) == GIT_OBJECT_TREE,
          let fanName = tsuku_git_tree_entry_name(e), let fan = fanValue(fanName), !fanCut[fan]
        else { continue }
        let fanID = tsuku_git_tree_entry_id(e).pointee
        guard seen.insert(key(fanID)).inserted else { continue }
        guard let folder = try load(fanID, fan: fan) else {
          if stopped { break walking }
          previous[fan] = []  // no longer compared with anything: free it
          continue
        }
        let old = previous[fan]
        var current = Set<Pair>(minimumCapacity: Int(tsuku_git_tree_entrycount(folder.pointer)))
        for j in 0..<tsuku_git_tree_entrycount(folder.pointer) {
          guard let b = tsuku_git_tree_entry_byindex(folder.pointer, j), tsuku_git_tree_entry_type(b) == GIT_OBJECT_BLOB,
            let name = tsuku_git_tree_entry_name(b), strlen(name) == 64, name[0] == fanName[0], name[1] == fanName[1]
          else { continue }
          let hex = UnsafeRawBufferPointer(start: name, count: 64)
          guard let id = ObjectID(hexUTF8: hex) else { continue }
          let pair = Pair(id: id, blob: GitHistoryMap.OIDKey(tsuku_git_oid_bytes(tsuku_git_tree_entry_id(b))))
          current.insert(pair)
          if old.contains(pair) { continue }
          let n = number ?? builder.commit(oidBytes(oid))
          number = n
          builder.add(id, blob: pair.blob, commit: n)
          stats.rows += 1
        }
        previous[fan] = current
      }
    }
    if stopped {
      if builder.stoppedAfter == 0 { builder.stoppedAfter = stats.commits }
      builder.cut = [UInt8](repeating: 0xff, count: 32)
    } else {
      for f in 0..<256 where fanCut[f] { builder.cut[f >> 3] |= 0x80 >> UInt8(f & 7) }
    }
    return (builder.finish(), stats)
  }

  /// A commit's committer time and root tree id, without loading the tree.
  func commitHeader(_ id: git_oid) throws -> (time: Int64, tree: git_oid) {
    var oid = id
    var c: OpaquePointer?
    try gitCheck(tsuku_git_commit_lookup(&c, repo, &oid), "cannot read commit '\(hex(id))' in '\(path)'")
    defer { tsuku_git_commit_free(c) }
    return (Int64(tsuku_git_commit_time(c)), tsuku_git_commit_tree_id(c).pointee)
  }
}
