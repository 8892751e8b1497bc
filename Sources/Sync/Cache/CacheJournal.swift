import Foundation
import Store

/// What one sync adds to the cache, kept as packs. Blobs fetched one by one are journaled a
/// batch at a time (one file and one fsync per batch, never more than a batch in memory);
/// whole packs are written as they arrive; at the end the packs of this sync are merged into
/// one file. A dry run writes nothing and keeps what packs hold in memory instead.
final class CacheJournal {
  /// The most bytes of blobs fetched one by one held before they are written: they are
  /// journaled as a pack built in memory, so a batch is held twice (at 100K recipes, 16 MB
  /// batches took a 1% incremental sync to 95 MB).
  static let singleBatchBytes = 4 << 20

  let store: DirectoryStore
  let dryRun: Bool
  private var objects = [Data]()
  private var objectBytes = 0
  private var newPackFiles = [String]()
  private var dryPacked = [ObjectID: Data]()

  init(store: DirectoryStore, dryRun: Bool) {
    self.store = store
    self.dryRun = dryRun
  }

  /// A blob this sync holds, not yet in the cache: one a dry run took from a pack.
  func held(_ ref: BlobRef) -> Data? {
    guard let d = dryPacked[ref.sha256], d.count <= ref.size else { return nil }
    return d
  }

  /// True when a dry run holds `id` from a pack.
  func holds(_ id: ObjectID) -> Bool { dryPacked[id] != nil }

  /// A blob fetched alone (the tree, a subtree, a shard): written with the next full batch.
  func add(_ d: Data) throws {
    objects.append(d)
    objectBytes += d.count
    if objectBytes >= CacheJournal.singleBatchBytes, !dryRun {
      newPackFiles += try store.addPacks([Pack.build(objects)])
      (objects, objectBytes) = ([], 0)
    }
  }

  /// A batch of blobs fetched together: written as one pack (a lone blob waits for the end).
  func add(batch list: [Data]) throws {
    if dryRun { return }
    if list.count > 1 {
      newPackFiles += try store.addPacks([Pack.build(list)])
    } else {
      objects += list
    }
  }

  /// A pack file this sync wrote whole.
  func add(packFile path: String) { newPackFiles.append(path) }

  /// The blobs of a pack a dry run received.
  func hold(_ pack: Pack) throws {
    for e in pack.entries { dryPacked[e.id] = try pack.blob(e) }
  }

  /// Writes what is still held, merges this sync's packs into one file and keeps at most eight
  /// pack files; returns the lone blob (if any) to be written with the index.
  func commit() throws -> [Data] {
    if objects.count > 1 {
      newPackFiles += try store.addPacks([Pack.build(objects)])
      objects = []
    }
    try store.mergePacks(newPackFiles)
    try store.consolidatePacks(keeping: 8)
    return objects
  }
}
