// Tree building and first-parent walks of the repository wrapper (libgit2's tree builder);
// the history map's walk is in GitRepository+History.swift.
import CGit2
import Foundation

extension GitRepository {
  /// Writes `base` with `files` (path components, edit) put in or taken out, one tree builder
  /// per changed folder, so the cost follows the change, not the size of the store. A folder
  /// left empty is dropped. Returns the tree and its entry count.
  func writeTree(base: GitTree?, files: [(ArraySlice<String>, GitTreeEdit)]) throws -> (oid: git_oid, count: Int) {
    var bld: OpaquePointer?
    try gitCheck(tsuku_git_treebuilder_new(&bld, repo, base?.pointer), "cannot build a tree in '\(path)'")
    defer { tsuku_git_treebuilder_free(bld) }
    func drop(_ name: String) throws {
      if tsuku_git_treebuilder_get(bld, name) == nil { return }
      try gitCheck(tsuku_git_treebuilder_remove(bld, name), "cannot remove '\(name)' from a tree in '\(path)'")
    }
    let groups = Dictionary(grouping: files, by: { $0.0.first ?? "" })
    for (name, group) in groups {
      let what = "cannot add '\(name)' to a tree in '\(path)'"
      for (parts, edit) in group where parts.count == 1 {
        switch edit {
        case .remove: try drop(name)
        case .blob(var oid): try gitCheck(tsuku_git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_BLOB), what)
        case .tree(var oid): try gitCheck(tsuku_git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_TREE), what)
        }
      }
      let deeper = group.filter { $0.0.count > 1 }.map { ($0.0.dropFirst(), $0.1) }
      if deeper.isEmpty { continue }
      var sub: GitTree?
      if let base, let e = tsuku_git_tree_entry_byname(base.pointer, name), tsuku_git_tree_entry_type(e) == GIT_OBJECT_TREE {
        sub = try tree(tsuku_git_tree_entry_id(e).pointee)
      }
      if sub == nil && deeper.allSatisfy({ if case .remove = $0.1 { true } else { false } }) { continue }
      var (oid, count) = try writeTree(base: sub, files: deeper)
      if count == 0 {
        try drop(name)
      } else {
        try gitCheck(tsuku_git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_TREE), what)
      }
    }
    let count = Int(tsuku_git_treebuilder_entrycount(bld))
    var out = git_oid()
    try gitCheck(tsuku_git_treebuilder_write(&out, bld), "cannot write a tree to '\(path)'")
    return (out, count)
  }

  /// The blobs under `folder/<fan>/` in `tree`, by name: their git blob ids.
  func blobs(in tree: GitTree, folder: String) throws -> [ObjectID: git_oid] {
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
    try gitCheck(tsuku_git_commit_lookup(&c, repo, &oid), "cannot read commit '\(hex(commit))' in '\(path)'")
    defer { tsuku_git_commit_free(c) }
    guard tsuku_git_commit_parentcount(c) > 0, let p = tsuku_git_commit_parent_id(c, 0) else { return nil }
    return p.pointee
  }

  /// For each of `ids` (held under `folder` at `tip`), the committer time of the oldest commit
  /// of the unbroken first-parent run from `tip` that holds it there. Walks back only while
  /// some blob is still present, and reads only the fan-out folders whose tree changed.
  func arrivals(of ids: Set<ObjectID>, tip: git_oid, folder: String) throws -> [ObjectID: Int64] {
    var pending = Dictionary(grouping: ids, by: \.fanout).mapValues(Set.init)
    var out = [ObjectID: Int64]()
    func fans(_ t: GitTip) throws -> (git_oid?, [String: git_oid]) {
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
}
