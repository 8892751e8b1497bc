import Foundation

/// Writing: one commit per change on the branch, moved with a compare-and-swap.
extension GitStore {
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
    var candidates = [(Int, GitOID)]()
    let parent = try state.withLock { s -> GitOID? in
      let (parent, base) = try s.repo.branchTip(branch)
      let index = try read(s.repo, base, DocumentName.index.path, "'index.json'", .max)
      try checkPrecondition(change.precondition, current: index, location: location)
      if change.checkpoint != .any {
        let cp = try read(s.repo, base, DocumentName.checkpoint.path, "'log/checkpoint'", .max)
        try checkCheckpointCondition(change.checkpoint, current: cp, location: location)
      }
      // One fan-out folder at a time: each folder's tree is read once, not once per blob.
      var byFan = [String: [Int]]()
      for k in blobs.indices { byFan[blobs[k].id.fanout, default: []].append(k) }
      let objects = layoutPath("objects/sha256")
      for (fan, ks) in byFan {
        var folder: GitTree?
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
    var added = [(ObjectID, GitOID)]()
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
      var files = [(String, GitTreeEdit)]()
      for (name, data) in change.orderedDocuments {
        if name.isWriteOnce,
          !(try writeOnceNeeded(
            name, existing: try read(s.repo, base, name.path, "'\(name.path)'", 1 << 26), new: data,
            location: location))
        {
          continue
        }
        files.append((layoutPath(name.path), .blob(try s.repo.createBlob(data))))
        report.documentsWritten += 1
      }
      // In the same commit as the checkpoint that supersedes them.
      files += change.partialTileRemovals.map { (layoutPath($0.path), GitTreeEdit.remove) }
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
  func unreferenced(_ repo: GitRepository, _ tree: GitTree, keeping keep: Set<ObjectID>) throws
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
  func fanFolders(
    _ repo: GitRepository, _ base: GitTree?, added: [(ObjectID, GitOID)], dropped: [(fan: String, name: String)]
  ) throws -> [(String, GitTreeEdit)] {
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
    var out = [(String, GitTreeEdit)]()
    for fan in byFan.keys.sorted() {
      let (range, drops) = byFan[fan]!
      var folder: GitTree?
      if let base, let e = try repo.entry(base, objects + "/" + fan), e.isTree { folder = try repo.tree(e.oid) }
      let edits =
        sorted[range].map { (ArraySlice([$0.0.hex]), GitTreeEdit.blob($0.1)) }
        + drops.map { (ArraySlice([$0]), GitTreeEdit.remove) }
      let (oid, count) = try repo.writeTree(base: folder, files: edits)
      out.append((objects + "/" + fan, count == 0 ? .remove : .tree(oid)))
    }
    return out
  }

  /// Test hook: commits raw bytes at layout paths (relative to the subfolder), bypassing every
  /// check, as a careless or malicious committer would, dated `time` (nil: now). Returns the
  /// commit.
  @discardableResult
  func commitRaw(_ files: [(String, Data)], message: String = "raw commit", time: Date? = nil) throws -> String? {
    try state.withLock { s in
      let branch = try publishBranch()
      let (parent, base) = try s.repo.branchTip(branch)
      let blobs = try files.map { (layoutPath($0.0), GitTreeEdit.blob(try s.repo.createBlob($0.1))) }
      return try commit(&s, blobs, on: branch, parent: parent, base: base, message: message, time: time)
    }
  }

  func publishBranch() throws -> String {
    if let branch { return branch }
    if let ref { throw TsukuError(.usage, "cannot publish to '\(location)': ref '\(ref)' is not a branch") }
    throw TsukuError(.usage, "cannot publish to '\(location)': HEAD is detached, name a branch with '#BRANCH'")
  }

  /// Builds the tree with `files` put in or taken out, commits it on top of `parent`, dated
  /// `time` (nil: now), and moves the branch if it still points there. Nil when the tree did
  /// not change (no commit is made).
  func commit(
    _ s: inout State, _ files: [(String, GitTreeEdit)], on branch: String, parent: GitOID?, base: GitTree?,
    message: String, time: Date?
  ) throws -> String? {
    let split = files.map { (ArraySlice($0.0.split(separator: "/").map(String.init)), $0.1) }
    let treeID = split.isEmpty ? nil : try s.repo.writeTree(base: base, files: split).oid
    guard let treeID, base.map({ !same($0.oid, treeID) }) ?? true else {
      s.tip = try s.repo.tip(parent)
      return nil
    }
    let id = try s.repo.commit(tree: treeID, parent: parent, message: message, time: time)
    if try !s.repo.moveBranch(branch, to: id, from: parent, log: "tsuku: " + message) {
      throw TsukuError(
        .conflict,
        "branch '\(branch)' in '\(repositoryPath)' moved while publishing; nothing was published, run it again")
    }
    s.tip = try s.repo.tip(id)
    return hex(id)
  }
}
