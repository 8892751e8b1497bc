import Foundation
import Store

/// What `tsuku registry gc` is asked to do.
public struct GCOptions: Sendable {
  /// The current index and the K-1 versions before it (from the archive) keep their blobs.
  public var keepIndexVersions = 3
  /// A blob younger than this is never quarantined, and a quarantined one is deleted only
  /// this long after it was quarantined.
  public var minAge: TimeInterval = 7 * 86400
  /// Report what would happen; change nothing.
  public var dryRun = false
  public var now: Date

  public init(keepIndexVersions: Int = 3, minAge: TimeInterval = 7 * 86400, dryRun: Bool = false, now: Date) {
    self.keepIndexVersions = keepIndexVersions
    self.minAge = minAge
    self.dryRun = dryRun
    self.now = now
  }
}

/// What a gc run did (or, with `dry_run`, would do). The JSON of `registry gc --json`.
public struct GCReport: Encodable, Sendable {
  public struct Count: Codable, Sendable, Equatable {
    public var objects = 0
    public var bytes = 0
    mutating func add(_ o: StoredObject) {
      objects += 1
      bytes += o.size
    }
  }
  public var store: String
  public var run_at: String
  public var dry_run: Bool
  public var index_version: Int
  /// The index versions whose blobs were kept.
  public var kept_versions: [Int] = []
  /// Versions within K that have no archive copy (published before the archive existed).
  public var unarchived_versions: [Int] = []
  /// Blobs the kept versions pin (tree, shards, packs, revocation lists, recipes, golden files).
  public var referenced = 0
  /// Live blobs before the run.
  public var live = Count()
  /// Moved back from the quarantine: a kept index needs them.
  public var restored = Count()
  /// Deleted from the quarantine (quarantined at least min-age ago): the bytes freed.
  public var deleted = Count()
  /// Moved into the quarantine by this run.
  public var quarantined = Count()
  /// Referenced by no kept index but younger than min-age: left alone.
  public var young = Count()
  /// In the quarantine after the run, waiting for min-age.
  public var quarantine_after = Count()
  public var warnings: [String] = []
  public var bytes_freed: Int { deleted.bytes }

  enum CodingKeys: String, CodingKey {
    case store, run_at, dry_run, index_version, kept_versions, unarchived_versions, referenced, live, restored, deleted
    case quarantined, young, quarantine_after, warnings, bytes_freed
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(store, forKey: .store)
    try c.encode(run_at, forKey: .run_at)
    try c.encode(dry_run, forKey: .dry_run)
    try c.encode(index_version, forKey: .index_version)
    try c.encode(kept_versions, forKey: .kept_versions)
    try c.encode(unarchived_versions, forKey: .unarchived_versions)
    try c.encode(referenced, forKey: .referenced)
    try c.encode(live, forKey: .live)
    try c.encode(restored, forKey: .restored)
    try c.encode(deleted, forKey: .deleted)
    try c.encode(quarantined, forKey: .quarantined)
    try c.encode(young, forKey: .young)
    try c.encode(quarantine_after, forKey: .quarantine_after)
    try c.encode(warnings, forKey: .warnings)
    try c.encode(bytes_freed, forKey: .bytes_freed)
  }
}

/// Retention: removes the blobs no kept index version pins, in two runs through the
/// quarantine (`ObjectArea.quarantine`), never one a kept index or its revocation list needs.
///
/// One run: (1) reads `index.json` and the archive copies of the K-1 versions before it
/// (`index/<N>.index.json`), verified against the store's root chain, and every blob they pin;
/// (2) moves back any quarantined blob they pin; (3) deletes quarantined blobs that were
/// quarantined at least `minAge` ago; (4) moves into the quarantine live blobs that no kept
/// version pins and that are at least `minAge` old, provided `index.json` has not changed
/// since (1); (5) reads `index.json` again and, if a publish happened meanwhile, moves back
/// whatever the new index pins. A publish racing with gc is covered by `minAge` (a blob it
/// wrote is young) and by (4)/(5) (a blob it re-used is restored at once).
public enum Retention {
  public static func collect(_ store: any ObjectStore, options o: GCOptions) throws -> GCReport {
    guard (1...1000).contains(o.keepIndexVersions) else {
      throw TsukuError(.usage, "invalid --keep-index-versions '\(o.keepIndexVersions)': expected 1 to 1000")
    }
    guard let firstBytes = try store.readDocument(.index, maxSize: Limits.indexFile) else {
      throw TsukuError(.usage, "'\(store.location)' has no index.json: nothing to keep, so gc refuses to remove anything")
    }
    let current = try IndexContents.verify(firstBytes, store: store, what: "index.json in '\(store.location)'")
    var r = GCReport(store: store.location, run_at: Timestamp.format(o.now), dry_run: o.dryRun, index_version: current.index.version)

    // The kept versions: index.json, the archive copy of its own version (a revocation since
    // may have changed its revocation list), and the K-1 versions before it.
    var kept = [current]
    let oldest = max(1, current.index.version - o.keepIndexVersions + 1)
    for v in stride(from: current.index.version, through: oldest, by: -1) {
      guard let bytes = try store.readDocument(.archivedIndex(v), maxSize: Limits.indexFile) else {
        if v != current.index.version { r.unarchived_versions.append(v) }
        continue
      }
      let idx = try IndexContents.verify(bytes, store: store, what: "index/\(v).index.json in '\(store.location)'")
      guard idx.index.version == v else {
        throw TsukuError(.integrity, "index/\(v).index.json in '\(store.location)' holds index version \(idx.index.version)")
      }
      kept.append(idx)
    }
    r.kept_versions = Array(Set(kept.map(\.index.version))).sorted(by: >)
    if !r.unarchived_versions.isEmpty {
      r.warnings.append(
        "index version\(r.unarchived_versions.count == 1 ? "" : "s") \(r.unarchived_versions.sorted().map(String.init).joined(separator: ", ")) \(r.unarchived_versions.count == 1 ? "has" : "have") no archive copy (published before the archive existed): only the blobs of versions \(r.kept_versions.map(String.init).joined(separator: ", ")) are kept")
    }

    let live = try store.inventory(.live, dated: true)
    var quarantine = Dictionary(uniqueKeysWithValues: try store.inventory(.quarantine, dated: true).map { ($0.id, $0) })
    for obj in live { r.live.add(obj) }
    let liveIDs = Set(live.map(\.id))

    // What the kept versions pin. A tree or shard found only in the quarantine is moved back
    // first so it can be read (in a dry run that is reported instead).
    func fetch(_ id: ObjectID, _ size: Int, _ what: String) throws -> Data {
      if !liveIDs.contains(id), let q = quarantine[id] {
        if o.dryRun {
          throw TsukuError(.usage, "the \(what) '\(id.hex)' of a kept index is in the quarantine; run gc without --dry-run to move it back")
        }
        try store.move([id], from: .quarantine, to: .live)
        r.restored.add(q)
        quarantine[id] = nil
      }
      do {
        return try store.get(id, maxSize: size)
      } catch let e as TsukuError {
        throw TsukuError(e.code, "gc cannot tell what a kept index pins (\(e.message)); nothing was removed")
      }
    }
    var needed = Set<ObjectID>()
    for idx in kept { needed.formUnion(try IndexContents.load(idx, fetch: fetch).pinned.keys) }
    r.referenced = needed.count

    let cutoff = o.now.addingTimeInterval(-o.minAge)
    let restore = quarantine.values.filter { needed.contains($0.id) }
    let expired = quarantine.values.filter { !needed.contains($0.id) && ($0.modified.map { $0 <= cutoff } ?? false) }
    var candidates = [StoredObject]()
    for obj in live where !needed.contains(obj.id) {
      if let m = obj.modified, m <= cutoff { candidates.append(obj) } else { r.young.add(obj) }
    }
    for q in restore { r.restored.add(q) }
    for q in expired { r.deleted.add(q) }
    if !o.dryRun {
      try store.move(restore.map(\.id), from: .quarantine, to: .live)
      try store.remove(expired.map(\.id), from: .quarantine)
    }
    for q in restore + expired { quarantine[q.id] = nil }

    // Quarantine only against the index this run read: a publish since then may pin anything.
    if !candidates.isEmpty {
      if try store.readDocument(.index, maxSize: Limits.indexFile) != firstBytes {
        r.warnings.append("index.json changed while gc ran (a publish?): nothing was quarantined; run gc again")
        candidates = []
      }
    }
    for c in candidates {
      r.quarantined.add(c)
      quarantine[c.id] = c
    }
    if !o.dryRun && !candidates.isEmpty {
      try store.move(candidates.map(\.id), from: .live, to: .quarantine)
      if let now = try store.readDocument(.index, maxSize: Limits.indexFile), now != firstBytes {
        let newer = try IndexContents.verify(now, store: store, what: "index.json in '\(store.location)'")
        let pins = try IndexContents.load(newer, fetch: fetch).pinned
        let back = candidates.filter { pins[$0.id] != nil }
        try store.move(back.map(\.id), from: .quarantine, to: .live)
        for b in back {
          r.quarantined.objects -= 1
          r.quarantined.bytes -= b.size
          r.restored.add(b)
          quarantine[b.id] = nil
        }
        r.warnings.append("index.json changed while gc ran: moved \(back.count) blobs the new index pins back out of the quarantine")
      }
    }
    for q in quarantine.values { r.quarantine_after.add(q) }
    return r
  }
}
