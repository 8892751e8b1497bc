import Foundation
import Store

/// Where a publish reads its files from. Any of the three may be absent.
public struct PublishInput: Sendable {
  /// Community recipes, `<letter>/<name>.toml` or flat `<name>.toml`.
  public var recipes: String?
  /// The critical set, same shapes.
  public var critical: String?
  /// Golden files, `…/<tool>/v<version>-<platform>.json` at any depth.
  public var golden: String?
  public init(recipes: String? = nil, critical: String? = nil, golden: String? = nil) {
    self.recipes = recipes
    self.critical = critical
    self.golden = golden
  }
}

/// What a publish did, per target.
public struct PublishResult: Sendable {
  public var indexVersion: Int
  public var rootVersion: Int
  public var scan: PublishScan
  /// What the publish changes (or, in a dry run, would change) in each target, in target order.
  public var changes: [PublishChanges] = []
  public var targets: [(location: String, report: ApplyReport)]
}

/// Builds and writes a signed index over folders of recipes and golden files.
public enum Publisher {
  static let maxFileSize = 4 * 1024 * 1024

  /// The latest root of a store (or the one at version `upTo`), verified from version 1 along
  /// the chain.
  public static func currentRoot(of store: any ObjectReader, upTo limit: Int = Int.max) throws -> TrustedRoot {
    guard let first = try store.readDocument(.root(1), maxSize: Limits.root) else {
      throw TsukuError(
        .usage, "'\(store.location)' has no root/1.root.json; run 'tsuku registry init --to \(store.location)' first")
    }
    var root = try TrustedRoot(anchor: first, what: "root/1.root.json in '\(store.location)'")
    while root.version < limit, let next = try store.readDocument(.root(root.version + 1), maxSize: Limits.root) {
      root = try root.next(next, what: "root/\(root.version + 1).root.json in '\(store.location)'")
    }
    return root
  }

  /// The index a store holds now, checked for signatures (under the root version it names)
  /// but not for freshness: an expired index is exactly what a publish replaces.
  public static func currentIndex(of store: any ObjectStore, root: TrustedRoot) throws -> VerifiedIndex? {
    guard let bytes = try store.readDocument(.index, maxSize: Limits.indexFile) else { return nil }
    let named = try IndexFile.parse(bytes, what: "index.json in '\(store.location)'").root_version
    let signer = named == root.version ? root : try currentRoot(of: store, upTo: named)
    return try IndexVerifier.verify(
      bytes, root: signer, state: TrustState(), now: .distantPast, source: store.location, ignoringRevokedKeys: true)
  }

  /// Refuses a publish with bad input files, every one of them in one error: a line per file,
  /// its path relative to the folder given, and why.
  static func refuseBadInput(_ refused: [PublishScan.Refusal], input: PublishInput) throws {
    guard !refused.isEmpty else { return }
    let folders = [input.critical, input.recipes, input.golden].compactMap { $0 }.map { $0 + "/" }
    let lines = refused.map { r in
      let folder = folders.filter { r.path.hasPrefix($0) }.max { $0.count < $1.count }
      return "  " + displayLine(folder.map { String(r.path.dropFirst($0.count)) } ?? r.path) + ": " + r.reason
    }
    let inFolders = folders.map { "'\(displayLine(String($0.dropLast())))'" }.joined(separator: ", ")
    throw TsukuError(
      .usage, "\(refused.count) input file(s) refused in \(inFolders); nothing written:\n" + lines.joined(separator: "\n"))
  }

  /// Validates the input, signs a new index and writes it to every target: blobs the target
  /// lacks first, `index.json` last, each target in one atomic change.
  ///
  /// `commitTime` dates the commit a git target makes (nil: now; the index's own dates always
  /// follow `now`). With `prune`, a git target's committed tree keeps only the blobs this
  /// index references (`StoreChange.keepOnly`), as a retention job would; history keeps the rest.
  ///
  /// Before anything is written, the changes to each target are computed (`PublishResult.changes`)
  /// and the publish is refused (usage) when it removes a critical recipe or more than
  /// `PublishChanges.maxRemovedPercent` of the recipes or golden files, unless `allowRemovals`;
  /// and (integrity) when a file's hash is revoked by the revocation list it carries. A `dryRun`
  /// stops there, writing nothing, and returns the changes without the removal refusal (the
  /// caller shows them, then refuses).
  public static func publish(
    _ input: PublishInput, keys: [SigningKey], revocationKeys: [SigningKey] = [], to targets: [any ObjectStore],
    expiresDays: Int, now: Date, stage: String? = nil, commitTime: Date? = nil, prune: Bool = false, packs: Bool = false,
    dryRun: Bool = false, allowRemovals: Bool = false, log: (String) -> Void = { _ in },
    failed: ([TargetState]) -> Void = { _ in }
  ) throws -> PublishResult {
    guard !targets.isEmpty else { throw TsukuError(.usage, "publish needs at least one --to") }
    let expires = try IndexCommit.expiry(days: expiresDays, now: now)
    ProcessMemory.returnLargeBuffers()
    var scan = try scan(input, mode: .reportRefusals)
    scan.accepted = []
    try refuseBadInput(scan.refused, input: input)
    if scan.entries.isEmpty { throw TsukuError(.usage, "nothing to publish: no recipes found") }
    for n in scan.notes.prefix(5) { log("note: " + n) }
    if scan.noteCount > 5 { log("note: \(scan.noteCount - 5) more golden files whose plan disagrees with their name") }
    log("validated \(scan.entries.count) recipes (\(scan.criticalCount) critical), \(scan.goldenCount) golden files, skipped \(scan.skipped.count) other files")

    // Every target read at once: a target that lacks a root version or an index version the
    // others hold is brought forward by this publish (the roots copied, verified).
    let all = try RegistryTargets(targets)
    let root = try all.requireRoot()
    try IndexCommit.checkSigners(keys, role: .index, root: root)
    let version = (all.index?.index.version ?? 0) + 1
    // The revocation section is carried over byte for byte (the newest among the targets, with
    // its list blob): a maintainer never needs that key. With revocation keys it is re-signed
    // (same list, next version, new expiry), or an empty list is made if there is none yet.
    var revocation = all.newestRevocationHolder?.index?.file.revocation
    var revocationBlob = try all.revocationList()
    if !revocationKeys.isEmpty {
      let env: Envelope
      if let r = all.revocation {
        env = try IndexCommit.renewed(r, expires: expires, keys: revocationKeys).1
      } else {
        let list = JSON.encode(RevocationList.empty)
        revocationBlob = list
        let rp = RevocationPayload(version: 1, expires: expires, list: BlobRef(of: list), revokedKeys: [], publishedBy: .current())
        env = try Envelope.sign(type: .revocation, payload: JSON.encode(rp), keys: revocationKeys)
      }
      _ = try env.verify(as: .revocation, role: .revocation, root: root.payload, what: "the new revocation list")
      revocation = env
    }
    try checkNotRevoked(scan.blobs, list: revocationBlob)
    let changes = try self.changes(scan.entries, targets: all.targets)
    if dryRun {
      return PublishResult(indexVersion: version, rootVersion: root.version, scan: scan, changes: changes, targets: [])
    }
    let problems = changes.flatMap(\.removalProblems)
    if !allowRemovals, !problems.isEmpty {
      throw TsukuError(
        .usage, "publish refused (nothing written; pass --allow-removals if this is meant): " + problems.joined(separator: "; "))
    }

    // The shards wait in a temporary file, not in memory, until they are packed and written.
    let spill = try SpillFile()
    var shards = [BlobSource]()
    let (prefixLength, shardRefs) = try IndexTreeBuilder.shards(scan.entries) { shards.append(try spill.append($0)) }
    let (subtrees, subtreeBlobs) = IndexTreeBuilder.subtrees(prefixLength: prefixLength, shards: shardRefs)
    // Every blob to write, in one list that the new packs refer to by position: the input's
    // files (read only when packed and written), the shards from the spill file, the small
    // blobs from memory, then the packs. The scan's blobs move into it (no copy) and are given
    // back at the end.
    let previousHolder = all.newestIndexHolder
    let previousTree = try previousHolder?.index.map { p in
      try IndexTree.parse(try previousHolder!.store.get(p.index.tree.sha256, maxSize: p.index.tree.size), what: "index tree")
    }
    let previousPacks = packs ? previousTree?.packs ?? [] : []
    let blobCount = scan.blobs.count
    let inputBytes = scan.blobs.reduce(0) { $0 + $1.size } + shardRefs.reduce(0) { $0 + $1.size }
    let list = BlobList(scan.blobs)
    scan.blobs = []
    let packRoom = previousPacks.count + PackPlanner.maxPacks(liveBytes: inputBytes)
    list.reserve(blobCount + subtreeBlobs.count + shards.count + 1 + packRoom + 8)
    list.append(contentsOf: subtreeBlobs.map(BlobSource.init))
    list.append(contentsOf: shards)
    shards = []
    if let revocationBlob { list.append(BlobSource(revocationBlob)) }
    func giveBack() {
      var items = list.take()
      items.removeLast(items.count - blobCount)
      scan.blobs = items
    }
    var packRefs: [IndexTree.PackRef]?
    if packs {
      let packSources: [BlobSource]
      (packRefs, packSources) = try PackPlanner.plan(
        live: list, previous: previousPacks, store: previousHolder?.store ?? all.targets[0].store)
      log("packs: \(packRefs!.count) (\(packSources.count) new)")
      // The packs kept from the newest previous index go too, read from its target only by a
      // target that lacks them. Nothing names a pack until the tree does, which is written last.
      let first = previousHolder?.store ?? all.targets[0].store
      let newPacks = Set(packSources.map(\.id))
      list.append(contentsOf: packSources)
      list.append(
        contentsOf: packRefs!.filter { !newPacks.contains($0.sha256) }.map { r in
          BlobSource(id: r.sha256, size: r.size, origin: "pack '\(r.sha256.hex.prefix(16))' in '\(first.location)'") {
            try first.get(r.sha256, maxSize: r.size)
          }
        })
    }
    let tree = IndexTreeBuilder.encode(prefixLength: prefixLength, shards: shardRefs, subtrees: subtrees, packs: packRefs)
    let payload = IndexPayload(
      format: Format.current, type: DocumentType.index.rawValue, version: version,
      expires: Timestamp.format(expires),
      published: Timestamp.format(now), tree: BlobRef(of: tree), recipes: scan.entries.count,
      golden: scan.goldenCount,
      revocation_version: revocation.flatMap { $0.payloadBytes }.flatMap { try? RevocationPayload.parse($0, what: "r") }?.version,
      published_by: .current())
    let indexEnv = try Envelope.sign(type: .index, payload: JSON.encode(payload), keys: keys)
    if stage == nil { _ = try indexEnv.verify(as: .index, role: .index, root: root.payload, what: "the new index") }
    let indexFile = IndexFile(rootVersion: root.version, index: indexEnv, revocation: revocation)
    // Pruning keeps what the new index needs: every blob written now and the packs kept from
    // the previous index.
    let keep = prune && stage == nil ? Set(list.items.map(\.id) + [SHA256.hash(tree)] + (packRefs ?? []).map(\.sha256)) : nil
    let commit = IndexCommit(
      file: indexFile, objects: [tree], sources: list.items,
      message: "publish index version \(version): \(scan.entries.count) recipes, \(scan.goldenCount) golden files",
      time: commitTime, keepOnly: keep)
    var results = [(location: String, report: ApplyReport)]()
    if let stage {
      // Across machines: the blobs go to the targets now (harmless: nothing names them yet),
      // the index waits in a staged file for more signatures.
      let reports = try commit.stage(to: all, path: stage)
      results = zip(all.targets, reports).map { ($0.location, $1) }
      giveBack()
      log("staged index version \(version) in \(stage): \(indexEnv.signatures.count) signature(s); add more with 'tsuku registry sign'")
      return PublishResult(indexVersion: version, rootVersion: root.version, scan: scan, changes: changes, targets: results)
    }
    // Checks what we are about to write exactly as a client will, then writes it to each target.
    try commit.commit(to: all, now: now, failed: failed) { head, report in
      let pruned = report.objectsPruned > 0 ? ", pruned \(report.objectsPruned)" : ""
      log("\(head.store.location): wrote \(report.objectsWritten) blobs (\(report.bytesWritten) bytes), \(report.objectsPresent) already present\(pruned)\(report.commit.map { ", commit \($0.prefix(12))" } ?? "")")
      results.append((head.store.location, report))
    }
    giveBack()
    return PublishResult(indexVersion: version, rootVersion: root.version, scan: scan, changes: changes, targets: results)
  }

}
