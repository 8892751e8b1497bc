import Dispatch
import Foundation
import Store
import Synchronization

/// What `tsuku verify` found.
public struct CacheReport: Sendable, Codable {
  public var index_version: Int?
  public var index_ok: Bool
  public var index_error: String?
  public var blobs_checked: Int
  public var bytes_checked: Int
  /// Corrupt blobs, removed: those whose bytes did not hash to their names, and those a
  /// damaged pack held (no longer cached).
  public var corrupt: [String]
  public var missing: [String]
  /// Packs whose table did not check out, set aside (see `DamagedPack`).
  public var damaged_packs: [String]
}

extension Client {
  /// Re-hashes every cached blob and re-verifies the cached index against the trusted root.
  /// Corrupt blobs are removed (a later read fetches them again) and listed.
  public func verifyCache() throws -> CacheReport {
    // A store of its own: a pack removed below as unreadable must not stay in a table of packs
    // that an earlier read of this command loaded.
    let cache = home.cache
    var report = CacheReport(
      index_version: nil, index_ok: false, index_error: nil, blobs_checked: 0, bytes_checked: 0, corrupt: [], missing: [],
      damaged_packs: [])
    // Every pack file re-hashed on all cores with bounded buffers, then every loose blob.
    var corrupt = [ObjectID]()
    var lost = [ObjectID]()
    for path in cache.packFiles() {
      do {
        let r = try PackFile.verify(path)
        report.blobs_checked += r.blobs
        report.bytes_checked += r.bytes
        corrupt += r.corrupt
      } catch let e as TsukuError where e.code == .integrity {
        // A pack whose table is unreadable holds nothing this cache can trust: it is set
        // aside, and every blob its table still names counts as corrupt unless another copy
        // is cached.
        let d = cache.setAside(pack: path, e)
        metrics.verificationFailed(backend: "cache", e)
        let outcome = d.movedTo.map { "moved it to '\($0)'" } ?? "removed it"
        warn("\(e.message); \(outcome)")
        recorder.record(
          AuditEvent("verify_failure", time: now, source: home.cacheDir, detail: "\(e.message); \(outcome)"))
        report.damaged_packs.append(path)
        lost += d.blobs
      }
    }
    let loose = try cache.looseObjects()
    let results = ParallelMap.map(loose.count) { i -> (ObjectID, Int?)? in
      do {
        return (loose[i], try cache.get(loose[i], maxSize: Int.max).count)
      } catch let e as TsukuError where e.code == .integrity {
        return (loose[i], nil)
      } catch {
        return nil
      }
    }
    for case let (id, size)? in results {
      report.blobs_checked += 1
      if let size { report.bytes_checked += size } else { corrupt.append(id) }
    }
    for id in Set(corrupt).sorted() {
      let e = TsukuError(.integrity, "cached blob '\(id.hex)' is corrupt: its bytes hash to another value", reason: .hashMismatch)
      report.corrupt.append(id.hex)
      try? cache.remove([id])
      metrics.verificationFailed(backend: "cache", e)
      warn(e.message + "; removed it")
    }
    let removed = Set(corrupt)
    for id in Set(lost).subtracting(removed).sorted() where (try? cache.contains(id)) != true {
      report.corrupt.append(id.hex)
    }
    report.corrupt.sort()
    if let bytes = try self.cache.index()?.bytes {
      do {
        var trusted = try trustedMetadata()
        let v = try trusted.updateIndex(bytes, source: home.cacheDir)
        report.index_version = v.index.version
        report.index_ok = true
        // Everything a sync fetches should be here: the tree, the shards and every recipe
        // (golden files may be fetched on first use).
        var pinned = [v.index.tree]
        if let tree = try? IndexTree.parse(try cache.get(v.index.tree.sha256, maxSize: v.index.tree.size), what: "index tree") {
          pinned += tree.subtreeRefs
          let shards = (try? IndexWalk(tree, read: { r, _ in try cache.get(r.sha256, maxSize: r.size) }).shards()) ?? []
          pinned += shards.map { BlobRef(sha256: $0.sha256, size: $0.size) }
          // The shards are read on every core: at a hundred thousand recipes they are thousands.
          pinned += ParallelMap.map(shards.count) { i -> [BlobRef] in
            let s = shards[i]
            return (try? ShardRecipes.parse(try cache.get(s.sha256, maxSize: s.size), expected: s.entries, what: "shard")) ?? []
          }.joined()
        }
        for r in pinned where !(try cache.contains(r.sha256)) { report.missing.append(r.sha256.hex) }
      } catch let e as TsukuError {
        report.index_error = e.message
        if e.code == .integrity { metrics.verificationFailed(backend: "cache", e) }
      }
    }
    return report
  }
}
