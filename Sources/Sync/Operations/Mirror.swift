import Foundation
import Store

/// What `tsuku registry mirror` is asked to do.
public struct MirrorOptions: Sendable {
  /// The archived index versions copied: the current one and the K-1 before it (gc's default).
  public var keepIndexVersions = GCOptions(now: .distantPast).keepIndexVersions
  /// Verify and report what would be copied; write nothing.
  public var dryRun = false
  /// A trusted root (`--root FILE`): the source's chain, verified from `root/1`, must hold it.
  public var anchor: TrustedRoot?
  /// Where the fetched blobs past the memory budget are spilled (an unlinked temporary file).
  public var spillDirectory = NSTemporaryDirectory()
  public var now: Date

  public init(keepIndexVersions: Int = 3, dryRun: Bool = false, anchor: TrustedRoot? = nil, now: Date) {
    self.keepIndexVersions = keepIndexVersions
    self.dryRun = dryRun
    self.anchor = anchor
    self.now = now
  }
}

/// What a mirror did to one target (the JSON of `registry mirror --json`, per target).
public struct MirrorTargetReport: Codable, Sendable, Equatable {
  public var target: String
  /// `copied`, `up_to_date`, `would_copy` (dry run), `refused` (not moved: newer, diverged
  /// roots, or an index that does not verify) or `failed` (the write failed).
  public var status: String
  public var objects_copied = 0
  public var bytes_copied = 0
  /// Pinned blobs the target already held.
  public var objects_present = 0
  public var documents_written = 0
  public var root_version_before: Int?
  public var root_version_after: Int?
  public var index_version_before: Int?
  public var index_version_after: Int?
  /// The commit made (git targets).
  public var commit: String?
  public var seconds = 0.0
  public var error: String?
  /// The exit status this target's outcome asks for (0 when it is at the source's state).
  public var exit_code: Int32 = 0
}

/// The report of `tsuku registry mirror`.
public struct MirrorReport: Codable, Sendable {
  public var source: String
  public var dry_run: Bool
  public var root_version: Int
  public var index_version: Int
  public var index_expires: String
  /// The source's index has expired: it is copied all the same (clients refuse it until the
  /// next publish or `resign`), and a warning says so.
  public var index_expired: Bool
  public var revocation_version: Int?
  /// The index versions copied: the current one and the archive copies retention keeps.
  public var kept_versions: [Int]
  /// Versions within the kept range that have no archive copy in the source.
  public var unarchived_versions: [Int]
  /// The blobs the kept indexes pin, and their bytes.
  public var pinned_objects: Int
  public var pinned_bytes: Int
  /// What was fetched from the source: objects (a pack is one) and their bytes, packs.
  public var fetched_objects: Int
  public var fetched_bytes: Int
  public var fetched_packs: Int
  public var seconds: Double
  public var warnings: [String]
  public var targets: [MirrorTargetReport]
  /// 0 every target is at the source's state; else the status of the first that is not.
  public var exit_code: Int32
}

/// A verified copy of a whole registry from one store to others: every root version,
/// `index.json`, the archived indexes retention keeps, and every blob they pin.
///
/// The source is read and verified first (the root chain from `root/1`, each index under the
/// root it names); each target is then judged (forward only: one holding a newer version, or
/// a root the source's chain does not extend, is refused alone) and listed once. The blobs some
/// target lacks are fetched, packs first (a cold copy costs a handful of requests), each
/// checked against its name before anything is written: a source that serves a corrupt blob
/// fails the whole mirror before any target is written. Then each target gets one change:
/// blobs, roots, archive copies, `index.json` last, guarded by the `index.json` it held.
public enum Mirror {
  public static func run(
    from sourceStore: any ObjectReader, to targets: [(url: String, store: any ObjectStore)], options o: MirrorOptions,
    progress: @escaping (String) -> Void = { _ in }
  ) throws -> MirrorReport {
    let started = Date()
    guard (1...1000).contains(o.keepIndexVersions) else {
      throw TsukuError(.usage, "invalid --keep-index-versions '\(o.keepIndexVersions)': expected 1 to 1000")
    }
    progress("reading the root chain and index of '\(sourceStore.location)'")
    let source = try MirrorSource(sourceStore, anchor: o.anchor, keep: o.keepIndexVersions, spillIn: o.spillDirectory)
    let cur = source.current
    var warnings = [String]()
    if let d = cur.index.expiryDate, d <= o.now {
      warnings.append(
        "index version \(cur.index.version) of '\(source.location)' expired at \(cur.index.expires): copied as it is; clients refuse it until a publish or resign"
      )
    }
    if let r = cur.revocation, let d = r.expiryDate, d <= o.now {
      warnings.append(
        "revocation list version \(r.version) of '\(source.location)' expired at \(r.expires): copied as it is")
    }
    if !source.unarchived.isEmpty {
      warnings.append(
        "index versions \(source.unarchived.map(String.init).joined(separator: ", ")) have no archive copy in '\(source.location)'")
    }

    // Each target judged and listed (all at once: a slow one costs its time once).
    var reports = targets.map { MirrorTargetReport(target: $0.url, status: "refused") }
    let judged = ParallelMap.map(targets.count, workers: max(1, min(targets.count, 8))) { i in
      Result { try MirrorTarget.read(targets[i].url, targets[i].store, source: source) }
    }
    var active = [(Int, MirrorTarget)]()
    for (i, r) in judged.enumerated() {
      switch r {
      case .success(let t):
        active.append((i, t))
        reports[i].root_version_before = t.rootsHeld == 0 ? nil : t.rootsHeld
        reports[i].index_version_before = t.index?.verified.index.version
      case .failure(let e):
        let err = e as? TsukuError ?? TsukuError(.other, "\(e)")
        reports[i].error = err.message
        reports[i].exit_code = err.code.exitCode
      }
    }

    // What the kept indexes pin: trees and shards read from a target that holds them (a
    // second run fetches next to nothing), else from the source; the packs some target
    // lacks are taken whole first, which brings the shards and most blobs with them.
    func lacking(_ id: ObjectID, _ size: Int) -> Bool { active.contains { !$0.1.holds(id, size: size) } }
    func holders(_ id: ObjectID, _ size: Int) -> [any ObjectReader] {
      active.filter { $0.1.holds(id, size: size) && !isRemote($0.1.url) }.map { $0.1.store }
    }
    let kept = source.kept
    var packs = [IndexTree.PackRef]()
    for v in kept {
      let t = v.index.tree
      let tree = try IndexTree.parse(
        try source.blob(t.sha256, size: t.size, what: "index tree", holders: holders(t.sha256, t.size)),
        what: "index tree '\(t.sha256.hex.prefix(16))' from '\(source.location)'")
      packs += (tree.packs ?? []).filter { p in lacking(p.sha256, p.size) && !packs.contains(p) }
    }
    if !packs.isEmpty {
      progress("fetching \(packs.count) packs from '\(source.location)'")
      try source.takePacks(packs) { progress("fetched \($0) of \(packs.count) packs") }
    }
    var pinned = [ObjectID: PinnedBlob]()
    for v in kept {
      let contents = try IndexContents.load(v) { id, size, what in
        try source.blob(id, size: size, what: what, holders: holders(id, size))
      }
      pinned.merge(contents.pinned) { a, _ in a }
    }
    let all = pinned.values.sorted { $0.id < $1.id }
    let wanted = all.filter { lacking($0.id, $0.size) && source.source($0.id) == nil }
    if !wanted.isEmpty {
      progress("fetching \(wanted.count) blobs from '\(source.location)'")
      try source.fetch(wanted) { progress("fetched \($0) of \(wanted.count) blobs") }
    }

    // Each target: one change, `index.json` last.
    for (i, t) in active {
      let clock = Date()
      var r = reports[i]
      r.root_version_after = r.root_version_before
      r.index_version_after = r.index_version_before
      do {
        guard let (change, blobs) = try t.change(pinned: all, source: source) else {
          r.status = "up_to_date"
          r.objects_present = all.count
          r.seconds = Date().timeIntervalSince(clock)
          reports[i] = r
          continue
        }
        r.objects_present = all.count - blobs.count
        if o.dryRun {
          r.status = "would_copy"
          r.objects_copied = blobs.count
          r.bytes_copied = blobs.reduce(0) { $0 + $1.size }
          r.documents_written = change.documents.count
          r.root_version_after = source.roots.count
          r.index_version_after = cur.index.version
        } else {
          progress("writing \(blobs.count) blobs and \(change.documents.count) documents to '\(t.url)'")
          let applied = try t.store.apply(change, sources: blobs)
          r.status = "copied"
          r.objects_copied = applied.objectsWritten
          r.bytes_copied = applied.bytesWritten
          r.objects_present = all.count - applied.objectsWritten
          r.documents_written = applied.documentsWritten
          r.commit = applied.commit
          r.root_version_after = source.roots.count
          r.index_version_after = cur.index.version
        }
      } catch {
        let err = error as? TsukuError ?? TsukuError(.other, "\(error)")
        r.status = "failed"
        r.error = err.message
        r.exit_code = err.code.exitCode
      }
      r.seconds = Date().timeIntervalSince(clock)
      reports[i] = r
    }
    let fetched = source.fetched
    return MirrorReport(
      source: source.location, dry_run: o.dryRun, root_version: source.roots.count, index_version: cur.index.version,
      index_expires: cur.index.expires, index_expired: (cur.index.expiryDate ?? .distantFuture) <= o.now,
      revocation_version: cur.revocation?.version, kept_versions: kept.map(\.index.version).sorted(by: >),
      unarchived_versions: source.unarchived, pinned_objects: all.count, pinned_bytes: all.reduce(0) { $0 + $1.size },
      fetched_objects: fetched.objects, fetched_bytes: fetched.bytes, fetched_packs: fetched.packs,
      seconds: Date().timeIntervalSince(started), warnings: warnings, targets: reports,
      exit_code: reports.first { $0.exit_code != 0 }?.exit_code ?? 0)
  }

  /// A store reached over the network: reading a pinned blob from it costs what reading it
  /// from the source costs, so it is not preferred.
  static func isRemote(_ url: String) -> Bool {
    let l = url.lowercased()
    return l.hasPrefix("s3://") || l.hasPrefix("https://") || l.hasPrefix("http://")
  }
}
