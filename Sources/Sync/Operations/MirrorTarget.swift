import Foundation
import Store

/// What one target of a mirror held before the copy, and what it lacks of the source.
struct MirrorTarget: Sendable {
  let url: String
  let store: any ObjectStore
  /// How many root versions it holds (each byte-identical to the source's).
  var rootsHeld = 0
  /// Its `index.json` and what it verified to.
  var index: (bytes: Data, verified: VerifiedIndex)?
  /// The live blobs it lists, by name with their sizes; nil when the store cannot list (then
  /// every pinned blob is offered to it and its `apply` skips the ones it has).
  var present: [ObjectID: Int]?
  /// Its archive copies that differ from the source's or are absent.
  var archivesToWrite = [(Int, Data)]()

  /// The precondition of the one change: `index.json` as read here.
  var precondition: StoreChange.Precondition {
    index.map { .indexHash(SHA256.hash($0.bytes)) } ?? .indexAbsent
  }

  func holds(_ id: ObjectID, size: Int) -> Bool {
    guard let present else { return false }
    return present[id] == size
  }

  /// Reads a target and judges it against the source: refused (`.conflict`) when it is newer
  /// (a root version, an index version or a revocation list version the source does not
  /// reach) or holds a root the source's chain does not extend; refused (`.integrity`) when
  /// its `index.json` does not verify under the source's roots.
  static func read(_ url: String, _ store: any ObjectStore, source: MirrorSource) throws -> MirrorTarget {
    var t = MirrorTarget(url: url, store: store)
    let forward = "mirror only moves a target forward"
    while let bytes = try store.readDocument(.root(t.rootsHeld + 1), maxSize: Limits.root) {
      let n = t.rootsHeld + 1
      if n > source.roots.count {
        throw TsukuError(
          .conflict, "'\(url)' has root version \(n), newer than the newest of '\(source.location)' (\(source.roots.count)); \(forward)")
      }
      if bytes != source.roots[n - 1].bytes {
        throw TsukuError(
          .conflict, "'\(url)' has root version \(n) with other bytes than '\(source.location)': the source's root chain does not extend it")
      }
      t.rootsHeld = n
    }
    if let bytes = try store.readDocument(.index, maxSize: Limits.indexFile) {
      let what = "index.json in '\(url)'"
      let v: VerifiedIndex
      do { v = try MirrorSource.verify(bytes, roots: source.roots, what: what) } catch let e as TsukuError {
        throw TsukuError(.integrity, "\(e.message) (checked against the root chain of '\(source.location)'); not overwritten")
      }
      let mine = (v.index.version, v.revocation?.version ?? 0)
      let theirs = (source.current.index.version, source.current.revocation?.version ?? 0)
      if mine.0 > theirs.0 {
        throw TsukuError(
          .conflict, "'\(url)' has index version \(mine.0), newer than the \(theirs.0) of '\(source.location)'; \(forward)")
      }
      // Whatever the index versions: a newer revocation list is never replaced by an older one.
      if mine.1 > theirs.1 {
        throw TsukuError(
          .conflict,
          "'\(url)' has revocation list version \(mine.1), newer than the \(theirs.1) of '\(source.location)'; \(forward)")
      }
      t.index = (bytes, v)
    }
    for a in source.archived where try store.readDocument(.archivedIndex(a.version), maxSize: Limits.indexFile) != a.bytes {
      t.archivesToWrite.append((a.version, a.bytes))
    }
    do {
      t.present = Dictionary(try store.inventory(.live, dated: false).map { ($0.id, $0.size) }) { a, _ in a }
    } catch let e as TsukuError where e.code == .usage {
      t.present = nil
    }
    return t
  }

  /// The one change that brings this target to the source: the blobs it lacks (read from the
  /// source's spill as they are written), the root versions it lacks, the archive copies, and
  /// `index.json` last, guarded by the `index.json` read in `read`. Nil when it lacks nothing.
  func change(pinned: [PinnedBlob], source: MirrorSource) throws -> (StoreChange, [BlobSource])? {
    var blobs = [BlobSource]()
    for p in pinned where !holds(p.id, size: p.size) {
      guard let s = source.source(p.id) else {
        throw TsukuError(.other, "\(p.label) ('\(p.id.hex)') was not fetched from '\(source.location)'")
      }
      blobs.append(s)
    }
    var documents = [(DocumentName, Data)]()
    for n in stride(from: rootsHeld + 1, through: source.roots.count, by: 1) {
      documents.append((.root(n), source.roots[n - 1].bytes))
    }
    for (v, bytes) in archivesToWrite { documents.append((.archivedIndex(v), bytes)) }
    if let root = source.roots.last { documents += try LogWriter.copy(from: source.store, to: store, root: root.payload) }
    if index?.bytes != source.current.bytes { documents.append((.index, source.current.bytes)) }
    if blobs.isEmpty && documents.isEmpty { return nil }
    let change = StoreChange(
      documents: documents, precondition: precondition,
      message: "mirror index version \(source.current.index.version) from \(source.location)")
    return (change, blobs)
  }
}
