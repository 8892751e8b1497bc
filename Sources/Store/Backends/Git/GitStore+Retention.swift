import Foundation

/// Listing with dates, and the quarantine: one commit per step.
extension GitStore {
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
      var files = [(String, GitTreeEdit)]()
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
      var files = [(String, GitTreeEdit)]()
      for id in Set(ids).sorted() where try s.repo.entry(base, layoutPath(area.path(id))) != nil {
        files.append((layoutPath(area.path(id)), .remove))
      }
      if files.isEmpty { return }
      _ = try commit(
        &s, files, on: branch, parent: parent, base: base, message: "delete \(files.count) quarantined blobs", time: nil)
    }
  }
}
