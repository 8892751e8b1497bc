import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Packs kept whole in a directory store (`<root>/packs/<sha256>.pack`), as a sync received
/// them: one file per pack instead of one per blob, which is what a cold sync costs on disk.
/// Blobs are found by a binary search of each pack's table, read from the memory-mapped file,
/// and verified like any other blob. Removing a blob rewrites its pack without it.
final class PackedObjects: Sendable {
  let dir: String
  private struct Loaded: @unchecked Sendable {
    var packs: [(path: String, data: Data, count: Int)]
  }
  private let state = Mutex<Loaded?>(nil)

  init(root: String) { dir = root + "/packs" }

  private func load() -> [(path: String, data: Data, count: Int)] {
    state.withLock { s in
      if let s { return s.packs }
      var packs = [(path: String, data: Data, count: Int)]()
      let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".pack") }.sorted()
      for name in names {
        let path = dir + "/" + name
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped), data.count >= 12,
          data.prefix(8).elementsEqual(Pack.magic)
        else { continue }
        let count = data.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> Int in (0..<4).reduce(0) { $0 << 8 | Int(b[8 + $1]) } }
        guard 12 + count * 44 <= data.count else { continue }
        packs.append((path, data, count))
      }
      s = Loaded(packs: packs)
      return packs
    }
  }

  func invalidate() { state.withLock { $0 = nil } }

  /// Where `id` is: the pack's bytes and the blob's range in them.
  private func locate(_ id: ObjectID) -> (Data, Range<Int>, String)? {
    let want = id.bytes
    for p in load() {
      let found: Range<Int>? = p.data.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> Range<Int>? in
        var lo = 0
        var hi = p.count
        while lo < hi {
          let mid = (lo + hi) / 2
          let at = 12 + mid * 44
          var order = 0
          for i in 0..<32 where order == 0 {
            let x = b[at + i]
            let y = want[i]
            order = x < y ? -1 : (x > y ? 1 : 0)
          }
          if order == 0 {
            let offset = (0..<8).reduce(0) { $0 << 8 | Int(b[at + 32 + $1]) }
            let size = (0..<4).reduce(0) { $0 << 8 | Int(b[at + 40 + $1]) }
            let dataStart = 12 + p.count * 44
            guard offset >= 0, size >= 0, offset <= b.count - dataStart, size <= b.count - dataStart - offset else {
              return nil
            }
            return (dataStart + offset)..<(dataStart + offset + size)
          }
          if order < 0 { lo = mid + 1 } else { hi = mid }
        }
        return nil
      }
      if let found { return (p.data, found, p.path) }
    }
    return nil
  }

  func contains(_ id: ObjectID) -> Bool { locate(id) != nil }

  func size(of id: ObjectID) -> Int? { locate(id).map { $0.1.count } }

  /// The raw bytes of a packed blob (the caller verifies them).
  func get(_ id: ObjectID) -> Data? {
    guard let (data, range, _) = locate(id) else { return nil }
    return data.subdata(in: (data.startIndex + range.lowerBound)..<(data.startIndex + range.upperBound))
  }

  /// Every packed blob with its size and its pack's modification time.
  func list() -> [(ObjectID, Int, Int)] {
    var out = [(ObjectID, Int, Int)]()
    for p in load() {
      var st = stat()
      let mtime = stat(p.path, &st) == 0 ? Int(st.st_mtim.tv_sec) : 0
      p.data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
        for i in 0..<p.count {
          let at = 12 + i * 44
          let id = ObjectID(bytes: UnsafeRawBufferPointer(rebasing: b[at..<(at + 32)]))
          let size = (0..<4).reduce(0) { $0 << 8 | Int(b[at + 40 + $1]) }
          out.append((id, size, mtime))
        }
      }
    }
    return out
  }

  /// Rewrites the packs holding any of `ids` without them; returns the ids that were packed.
  func remove(_ ids: Set<ObjectID>, write: (Data, String) throws -> Void) throws -> Set<ObjectID> {
    var removed = Set<ObjectID>()
    for p in load() {
      guard let pack = try? Pack(p.data, what: "cached pack") else { continue }
      let hit = pack.entries.filter { ids.contains($0.id) }
      if hit.isEmpty { continue }
      removed.formUnion(hit.map(\.id))
      let keep = pack.entries.filter { !ids.contains($0.id) }.compactMap { try? pack.blob($0) }
      if !keep.isEmpty {
        let data = Pack.build(keep)
        try write(data, dir + "/" + SHA256.hash(data).hex + ".pack")
      }
      unlink(p.path)
    }
    invalidate()
    return removed
  }
}
