import Dispatch
import Foundation
import Store
import Synchronization

/// Which packs a publish keeps and which it writes.
///
/// Every pack holds at most `maxPackBytes` of blob bytes. Packs from the previous index are
/// kept while at least half of their blob bytes are still live; live blobs no kept pack holds
/// go into new packs, filled in order up to the cap. When that would make more than
/// `maxPacks(liveBytes:)` packs (at least 5, else 1.5 times what the live bytes fill), the
/// kept packs with the fewest live bytes are dropped and their live blobs packed anew, until
/// the count fits. So a cold sync fetches a bounded number of packs of a bounded size, and a
/// publish uploads what changed plus, now and then, the few small packs it merges.
///
/// Nothing here holds more than one pack: previous packs are read one at a time for their
/// tables, and new packs are hashed from their blobs read one at a time (their bytes are
/// assembled again when they are written, see `PackBuilder`).
enum PackPlanner {
  /// The most blob bytes a pack holds (a single larger blob gets a pack of its own).
  static let maxPackBytes = 16 << 20

  /// How many packs an index may name for `liveBytes` of live blobs.
  static func maxPacks(liveBytes: Int) -> Int {
    max(5, Int((1.5 * Double(liveBytes) / Double(maxPackBytes)).rounded(.up)))
  }

  /// `plan` over an array of its own.
  static func plan(live: [BlobSource], previous: [IndexTree.PackRef], store: any ObjectStore) throws
    -> ([IndexTree.PackRef], [BlobSource])
  {
    try plan(live: BlobList(live), previous: previous, store: store)
  }

  /// The packs the new index names (kept ones first, in their previous order) and the new
  /// packs to write; the new packs refer to the blobs of `list` by position.
  static func plan(live list: BlobList, previous: [IndexTree.PackRef], store: any ObjectStore) throws
    -> ([IndexTree.PackRef], [BlobSource])
  {
    let live = list.items
    // Positions in `live`, not copies or sets of names: the planner's own memory is a few
    // bytes per blob (plus, when there are previous packs, one map from name to position).
    let unique = firstCopies(live).map { Int($0) }
    let liveBytes = unique.reduce(0) { $0 + live[$1].size }

    // The previous packs worth keeping, each with the positions of the live blobs it holds.
    var kept = [(ref: IndexTree.PackRef, live: [Int32], liveBytes: Int)]()
    if !previous.isEmpty {
      var position = [ObjectID: Int32](minimumCapacity: unique.count)
      for i in unique { position[live[i].id] = Int32(i) }
      for ref in previous {
        // A pack over the cap (from before there was one) is not read: its blobs are packed anew.
        let blobBytes = ref.size - 12 - 44 * ref.count
        guard ref.count >= 0, blobBytes <= maxPackBytes,
          let data = try? store.get(ref.sha256, maxSize: ref.size), let pack = try? Pack(data)
        else { continue }
        var held = [Int32]()
        var bytes = 0
        var all = 0
        for e in pack.entries {
          all += e.size
          if let p = position[e.id] {
            held.append(p)
            bytes += e.size
          }
        }
        if bytes * 2 >= max(all, 1) { kept.append((ref, held, bytes)) }
      }
    }

    // Drop the kept packs with the fewest live bytes until the count fits.
    let limit = maxPacks(liveBytes: liveBytes)
    var rest = remaining(live, unique, kept: kept.map(\.live))
    while !kept.isEmpty && kept.count + groups(live, rest).count > limit {
      let over = kept.count + groups(live, rest).count - limit
      let smallest = kept.indices.sorted {
        (kept[$0].liveBytes, kept[$0].ref.sha256) < (kept[$1].liveBytes, kept[$1].ref.sha256)
      }
      let drop = Set(smallest.prefix(max(1, over)))
      kept = kept.indices.filter { !drop.contains($0) }.map { kept[$0] }
      rest = remaining(live, unique, kept: kept.map(\.live))
    }
    if rest.isEmpty { return (kept.map(\.ref), []) }

    // New packs, hashed on every core (each worker reads one blob at a time).
    let plan = groups(live, rest).map { Array(rest[$0]) }
    let packs = try ParallelMap.map(plan.count) { i in try PackBuilder.source(of: list, at: plan[i]) }
    let refs = zip(packs, plan).map { IndexTree.PackRef(sha256: $0.id, size: $0.size, count: $1.count) }
    return (kept.map(\.ref) + refs, packs)
  }

  /// The positions (of `unique`) of the live blobs no kept pack holds, in order.
  static func remaining(_ live: [BlobSource], _ unique: [Int], kept: [[Int32]]) -> [Int] {
    if kept.isEmpty { return unique }
    var covered = [Bool](repeating: false, count: live.count)
    for held in kept { for p in held { covered[Int(p)] = true } }
    return unique.filter { !covered[$0] }
  }

  /// `indices` cut in order into packs of at most `maxPackBytes` each, as ranges of `indices`.
  static func groups(_ live: [BlobSource], _ indices: [Int]) -> [Range<Int>] {
    indices.batchRanges(maxBytes: maxPackBytes) { live[$0].size }
  }
}
