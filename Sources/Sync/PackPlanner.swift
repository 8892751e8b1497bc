import Foundation
import Store

/// Which packs a publish keeps and which it writes.
///
/// Packs from the previous index are kept while at least half of their bytes are still live;
/// live blobs no kept pack holds go into one new pack. When that would make more than
/// `maxPacks` packs, everything live is repacked into one. So a cold sync fetches at most
/// `maxPacks` packs, and a publish uploads only what changed (plus, now and then, a repack).
enum PackPlanner {
  static let maxPacks = 5

  static func plan(live: [Data], previous: [IndexTree.PackRef], store: any ObjectStore) throws -> ([IndexTree.PackRef], [Data]) {
    var liveSize = [ObjectID: Int]()
    for b in live { liveSize[SHA256.hash(b)] = b.count }
    var kept = [IndexTree.PackRef]()
    var covered = Set<ObjectID>()
    for ref in previous {
      guard let data = try? store.get(ref.sha256, maxSize: ref.size), let pack = try? Pack(data) else { continue }
      let liveBytes = pack.entries.reduce(0) { $0 + (liveSize[$1.id] != nil ? $1.size : 0) }
      let allBytes = max(pack.entries.reduce(0) { $0 + $1.size }, 1)
      if liveBytes * 2 >= allBytes {
        kept.append(ref)
        for e in pack.entries where liveSize[e.id] != nil { covered.insert(e.id) }
      }
    }
    let rest = live.filter { !covered.contains(SHA256.hash($0)) }
    if rest.isEmpty { return (kept, []) }
    if kept.count + 1 > maxPacks {
      let all = Pack.build(live)
      return ([IndexTree.PackRef(sha256: SHA256.hash(all), size: all.count, count: liveSize.count)], [all])
    }
    let new = Pack.build(rest)
    let count = Set(rest.map { SHA256.hash($0) }).count
    return (kept + [IndexTree.PackRef(sha256: SHA256.hash(new), size: new.count, count: count)], [new])
  }
}
