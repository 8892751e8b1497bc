import Foundation
import Store
import Synchronization

/// The verified state of the registry a mirror copies: its whole root chain, `index.json`, the
/// archived indexes retention keeps, and (once fetched) the bytes of every blob they pin.
///
/// Blobs are fetched in bulk: the packs the kept indexes name first (several at once, each
/// checked against its name, then each blob inside checked against its own), then whatever the
/// packs did not hold, in parallel batches. Fetched blobs stay in memory up to `memoryBudget`
/// bytes (written from there with no second hash); past it they go to a spill file (one
/// unlinked temporary file), so memory stays bounded whatever the registry's size, and a
/// spilled blob is hashed again when it is read back to be written.
final class MirrorSource: Sendable {
  let store: any ObjectReader
  var location: String { store.location }
  /// Root versions 1...N, each verified by the one before (and by itself).
  let roots: [TrustedRoot]
  /// The current `index.json`, verified under the root version it names.
  let current: VerifiedIndex
  /// The archive copies kept (`index/<N>.index.json`), newest first, each verified.
  let archived: [(version: Int, bytes: Data, verified: VerifiedIndex)]
  /// Versions within the kept range without an archive copy.
  let unarchived: [Int]

  private let spill: SpillFile
  /// Bytes of fetched blobs held in memory; the rest are spilled.
  private let held = Mutex(0)
  static let memoryBudget = 256 << 20
  private let table = Mutex([ObjectID: BlobSource]())
  private let counts = Mutex((objects: 0, bytes: 0, packs: 0))

  /// Reads and verifies the root chain (from `root/1`, and through `anchor` when given),
  /// `index.json` and the archive copies of the `keep - 1` versions before it.
  init(_ store: any ObjectReader, anchor: TrustedRoot?, keep: Int, spillIn directory: String) throws {
    self.store = store
    let loc = store.location
    guard let first = try store.readDocument(.root(1), maxSize: Limits.root) else {
      throw TsukuError(.notFound, "'\(loc)' has no root/1.root.json: it holds no registry to mirror")
    }
    var roots = [try TrustedRoot(anchor: first, what: "root/1.root.json in '\(loc)'")]
    guard roots[0].version == 1 else {
      throw TsukuError(.integrity, "root/1.root.json in '\(loc)' holds root version \(roots[0].version)")
    }
    while let next = try store.readDocument(.root(roots.count + 1), maxSize: Limits.root) {
      // The same bound as a client's walk: a source cannot make the copy read roots forever.
      guard roots.count < Limits.maxRootRotations else {
        throw TsukuError(.integrity, "'\(loc)' has more than \(Limits.maxRootRotations) root versions")
      }
      roots.append(try roots[roots.count - 1].next(next, what: "root/\(roots.count + 1).root.json in '\(loc)'"))
    }
    if let anchor, anchor.version > roots.count || roots[anchor.version - 1].bytes != anchor.bytes {
      throw TsukuError(
        .integrity,
        "the root chain of '\(loc)' (versions 1 to \(roots.count)) does not hold the trusted root version \(anchor.version)")
    }
    self.roots = roots
    guard let bytes = try store.readDocument(.index, maxSize: Limits.indexFile) else {
      throw TsukuError(.notFound, "'\(loc)' has no index.json: nothing to mirror")
    }
    current = try Self.verify(bytes, roots: roots, what: "index.json in '\(loc)'")
    var archived = [(Int, Data, VerifiedIndex)]()
    var unarchived = [Int]()
    let top = current.index.version
    for v in stride(from: top, through: max(1, top - keep + 1), by: -1) {
      guard let old = try store.readDocument(.archivedIndex(v), maxSize: Limits.indexFile) else {
        if v != top { unarchived.append(v) }
        continue
      }
      let what = "index/\(v).index.json in '\(loc)'"
      let verified = try Self.verify(old, roots: roots, what: what)
      guard verified.index.version == v else {
        throw TsukuError(.integrity, "\(what) holds index version \(verified.index.version)")
      }
      archived.append((v, old, verified))
    }
    self.archived = archived
    self.unarchived = unarchived.sorted()
    spill = try SpillFile(in: directory)
  }

  /// Signatures under the root version the index names (freshness is the caller's to report).
  static func verify(_ bytes: Data, roots: [TrustedRoot], what: String) throws -> VerifiedIndex {
    let named = try IndexFile.parse(bytes, what: what).root_version
    guard named >= 1 && named <= roots.count else {
      throw TsukuError(.integrity, "\(what) names root version \(named), but the chain ends at version \(roots.count)")
    }
    return try IndexVerifier.verify(
      bytes, root: roots[named - 1], state: TrustState(), now: .distantPast, source: what, ignoringRevokedKeys: true)
  }

  /// The kept indexes, each once: `index.json` and the archive copies.
  var kept: [VerifiedIndex] {
    var seen = Set<Data>()
    return ([current] + archived.map(\.verified)).filter { seen.insert($0.bytes).inserted }
  }

  /// What was fetched from the source: objects (a pack counting as one), their bytes, packs.
  var fetched: (objects: Int, bytes: Int, packs: Int) { counts.withLock { $0 } }

  /// The fetched blob `id`, if it was fetched.
  func source(_ id: ObjectID) -> BlobSource? { table.withLock { $0[id] } }

  /// Fetches `packs` (those not fetched yet) in batches of up to 64 MiB, several at once, and
  /// keeps each pack and every blob inside it; `progress` hears after each batch.
  func takePacks(_ packs: [IndexTree.PackRef], progress: (Int) -> Void) throws {
    let wanted = packs.filter { source($0.sha256) == nil }
    var done = 0
    for batch in wanted.batched(maxBytes: 64 << 20, size: \.size) {
      let got = try store.getMany(batch.map { ($0.sha256, $0.size) })
      for p in batch where got[p.sha256] == nil {
        throw TsukuError(.notFound, "pack '\(p.sha256.hex)' pinned by the index tree is missing from '\(location)'")
      }
      // Each pack's blobs checked on every core; kept in the order of the batch.
      let blobs = try ParallelMap.map(batch.count) { [location] i in
        let data = got[batch[i].sha256]!
        let pack = try Pack(data, what: "pack '\(batch[i].sha256.hex.prefix(16))' from '\(location)'")
        return try pack.entries.map { e in
          do { return (e.id, try pack.blob(e)) } catch let err as TsukuError {
            throw TsukuError(
              err.code, "pack '\(batch[i].sha256.hex)' from '\(location)' holds a corrupt blob '\(e.id.hex)'",
              reason: err.reason)
          }
        }
      }
      for (p, inside) in zip(batch, blobs) {
        try keep(got[p.sha256]!, id: p.sha256)
        for (id, b) in inside { try keep(b, id: id) }
        counts.withLock {
          $0.objects += 1
          $0.bytes += p.size
          $0.packs += 1
        }
      }
      done += batch.count
      progress(done)
    }
  }

  /// Fetches the blobs of `wanted` not fetched yet, in parallel batches; a blob the source
  /// lacks is named with what it is (`label`), a corrupt one refused by the store's check.
  func fetch(_ wanted: [PinnedBlob], progress: (Int) -> Void) throws {
    let lacking = wanted.filter { source($0.id) == nil }
    let batches = lacking.batched(maxBytes: 16 << 20, maxCount: 1024, size: \.size)
    var done = 0
    // A few batches at once: each is itself overlapped by a remote store (16 requests), and a
    // directory or git source reads one blob after the other within a batch.
    for group in stride(from: 0, to: batches.count, by: 4) {
      let slice = Array(batches[group..<min(group + 4, batches.count)])
      let results = try ParallelMap.map(slice.count, workers: 4) { [store] i in
        try store.getMany(slice[i].map { ($0.id, $0.size) })
      }
      for (batch, got) in zip(slice, results) {
        for b in batch {
          guard let data = got[b.id] else {
            throw TsukuError(.notFound, "\(b.label) ('\(b.id.hex)') is missing from '\(location)'")
          }
          try keep(data, id: b.id)
          counts.withLock {
            $0.objects += 1
            $0.bytes += data.count
          }
        }
        done += batch.count
      }
      progress(done)
    }
  }

  /// The verified bytes of a blob the index pins (a tree, a subtree, a shard): fetched or
  /// spilled already, else from `holders` (targets that hold it: their `get` checks the hash
  /// as the source's does), else from the source (and kept).
  func blob(_ id: ObjectID, size: Int, what: String, holders: [any ObjectReader]) throws -> Data {
    if let s = source(id) { return try s.load() }
    for h in holders {
      if let data = try? h.get(id, maxSize: size) { return data }
    }
    let data: Data
    do { data = try store.get(id, maxSize: size) } catch let e as TsukuError where e.code == .notFound {
      throw TsukuError(.notFound, "\(what) '\(id.hex)' is missing from '\(location)'")
    }
    try keep(data, id: id)
    counts.withLock {
      $0.objects += 1
      $0.bytes += data.count
    }
    return data
  }

  /// Keeps bytes verified to hash to `id`: in memory within the budget, else spilled.
  private func keep(_ data: Data, id: ObjectID) throws {
    if table.withLock({ $0[id] != nil }) { return }
    let inMemory = held.withLock { h in
      guard h + data.count <= Self.memoryBudget else { return false }
      h += data.count
      return true
    }
    let s = inMemory ? BlobSource.verified(data, id: id) : try spill.append(data)
    table.withLock { t in if t[id] == nil { t[id] = s } }
  }
}
