import Foundation
import Store

/// The one way a registry's signed documents change: a new `index.json` (with the blobs it
/// adds) and/or new root versions, checked as a client will check them, then written to each
/// target as one atomic change guarded by the `index.json` the target held when it was read.
///
/// `registry publish`, `resign`, `revoke`, `rotate-root` and `publish --staged` all build one
/// and call `commit` (or `stage`, to collect more signatures first), so the archive rule, the
/// expiry range and the signer check exist once, here.
struct IndexCommit {
  /// What is checked before anything is written.
  enum Check: Sendable {
    /// The whole `index.json`, as a client with an empty state checks it (format.md 9.4);
    /// `source` names it in messages.
    case client(source: String)
    /// Only the new revocation section: a responder may revoke the very key that signed the
    /// current index section, which then no longer verifies (format.md, `registry revoke`).
    case revocationSection
  }

  /// The new `index.json`, or nil for a change of roots only.
  var file: IndexFile?
  /// New root versions (each the next of the one before, the first the next of the target's
  /// newest), written before `index.json`.
  var roots: [Envelope] = []
  /// Small new blobs held in memory (a tree, a revocation list).
  var objects: [Data] = []
  /// New blobs read when they are written (a publish's input files, shards and packs).
  var sources: [BlobSource] = []
  var check: Check = .client(source: "the new index")
  /// The sections more signers add to while the change is staged.
  var sign: [DocumentType] = [.index]
  /// The commit message (git targets).
  var message: String

  /// The record of who made the change (format.md §5.3), outside the signed payload too: as
  /// metadata of `index.json` (an S3 bucket's `x-amz-meta-tsuku-*`) and as git trailers after
  /// `message`.
  func record(_ by: PublishedBy) -> (message: String, metadata: [(name: String, value: String)]) {
    let signers = file.map { Set($0.index.signatures.map(\.keyid) + ($0.revocation?.signatures.map(\.keyid) ?? [])).sorted() }
    var trailers = by.identity.map { ["Published-by: \($0)"] } ?? []
    trailers.append("Tool: \(by.tool)")
    trailers += (signers ?? []).map { "Signed-by: \($0)" }
    var metadata = by.identity.map { [(name: "tsuku-published-by", value: $0)] } ?? []
    metadata.append(("tsuku-tool", by.tool))
    if let signers { metadata.append(("tsuku-signed-by", signers.map { String($0.prefix(16)) }.joined(separator: ","))) }
    return (message + "\n\n" + trailers.joined(separator: "\n"), metadata)
  }
  /// The date of a git target's commit (nil: now).
  var time: Date?
  /// With a set, a git target's committed tree keeps only these blobs.
  var keepOnly: Set<ObjectID>?
  /// The blobs were written earlier, by staging: a target must already hold the index tree.
  var needsStagedTree = false

  /// What a commit wrote: the newest root after it and one report per target written.
  struct Committed {
    var root: TrustedRoot
    var reports: [ApplyReport]
  }

  /// Checks the change against the newest verified state among the targets, then writes it to
  /// each target in their canonical order, each as one atomic change guarded by the
  /// `index.json` that target held when it was read: the root versions it lacks (copied),
  /// the new roots, the blobs the new index pins that it lacks, the archive copy of a new index
  /// version, `index.json` last. A target that already holds the result is left alone. A
  /// change of roots alone brings a lagging target's `index.json` to the newest too.
  ///
  /// Stops at the first target that fails, writing no further one, and throws that failure
  /// with one detail line per target: written, not written, or failed, with its versions.
  /// `written` hears of each target as it is done.
  @discardableResult
  func commit(
    to t: RegistryTargets, now: Date, failed: ([TargetState]) -> Void = { _ in },
    written: (RegistryTargets.Target, ApplyReport) -> Void = { _, _ in }
  ) throws -> Committed {
    guard !t.targets.isEmpty else { throw TsukuError(.usage, "--to is required at least once") }
    var newest = t.root
    var newRoots = [(DocumentName, Data)]()  // root versions after the newest, in order
    for env in roots {
      let bytes = RootDocuments.encode(env)
      newest = try newest.map { try $0.next(bytes, what: "the new root") } ?? TrustedRoot(anchor: bytes, what: "the new root")
      newRoots.append((.root(newest!.version), bytes))
    }
    let root = try newest ?? t.requireRoot()
    // The index.json every target ends with: the new one, or the newest among the targets.
    var indexBytes = t.index?.bytes
    var version = t.index?.index.version
    var tree = t.index?.index.tree.sha256
    if let file {
      let bytes = file.bytes
      let checked = try verify(file, bytes: bytes, root: root, now: now)
      indexBytes = bytes
      let payload = file.index.payloadBytes.flatMap { try? IndexPayload.parse($0, what: "the new index") }
      version = payload?.version
      tree = checked ?? payload?.tree.sha256
      if needsStagedTree, let tree, tree != t.index?.index.tree.sha256 {
        for target in t.targets where !(try target.store.contains(tree)) {
          throw TsukuError(
            .usage, "'\(target.location)' lacks the staged index tree; publish --stage to this store first")
        }
      }
    }
    let catchUp = CatchUp(targets: t, tree: tree, carried: !sources.isEmpty)
    let finalRoots = t.roots + newRoots.map(\.1)
    let ours = Self.order(indexBytes)
    let published = record(.current())
    // No target is ever moved back, and no version number gets a second content: every
    // target whose index.json this change replaces must hold no newer index section or
    // revocation list than the ones written, and an equal version only with the same payload.
    // Checked for all targets before anything is written.
    let newFile = try indexBytes.map { try IndexFile.parse($0, what: "the new index") }
    if let indexBytes, let newFile {
      for target in t.targets {
        guard let held = target.index, held.bytes != indexBytes else { continue }
        try Self.checkForward(held, to: newFile, ours: ours, location: target.location)
      }
    }

    // The transparency log (when the root has one): one new entry for the index.json every
    // target ends with, planned once against the longest log among the targets.
    var logPlan: LogPlan?
    if let indexBytes, LogRole.enabled(root.payload), t.targets.contains(where: { $0.index?.bytes != indexBytes }) {
      logPlan = try LogWriter.plan(
        stores: t.targets.map(\.store), root: root.payload, signedUnder: t.root.map { [$0.payload] } ?? [],
        index: indexBytes, keys: try LogWriter.keys(for: root.payload),
        now: time ?? now, fetch: Self.blobReader(objects: objects, sources: sources, stores: t.targets.map(\.store)))
    }

    /// The change that brings `target` to the result, or nil when it holds it already.
    func change(for target: RegistryTargets.Target) throws -> (StoreChange, [BlobSource])? {
      var documents = (min(target.roots.count, finalRoots.count)..<finalRoots.count).map { v in
        (DocumentName.root(v + 1), finalRoots[v])
      }
      var blobs = [Data]()
      var more = [BlobSource]()
      if let indexBytes, target.index?.bytes != indexBytes {
        blobs = objects
        more = sources + (try catchUp.missing(in: target))
        // The archive rule: a new index version is archived too (`index/<N>.index.json`, for
        // retention and validation). A target that lacks a version the others hold gets their
        // archive copy.
        if let version, version != target.index?.index.version {
          var archived = indexBytes
          if version == t.index?.index.version, let holder = t.newestIndexHolder,
            let copy = try? holder.store.readDocument(.archivedIndex(version), maxSize: Limits.indexFile)
          {
            archived = copy
          }
          documents.append((.archivedIndex(version), archived))
        }
        if let logPlan {
          var seen = Set(documents.map(\.0))
          for d in try logPlan.documents(for: target.store) where seen.insert(d.0).inserted { documents.append(d) }
        }
        documents.append((.index, indexBytes))
      }
      if documents.isEmpty && blobs.isEmpty && more.isEmpty { return nil }
      var change = StoreChange(
        objects: blobs, documents: documents, precondition: target.precondition, message: published.message, time: time,
        keepOnly: keepOnly)
      change.metadata = published.metadata
      // The partial log tiles the new full tiles supersede, removed after index.json.
      if let logPlan, target.index?.bytes != indexBytes { change.removals = try logPlan.superseded(for: target.store) }
      return (change, more)
    }

    /// Whether `target`, read again after a conflict, holds an older state this change
    /// supersedes: a prefix of the new root chain and an older index (or revocation list).
    func supersedes(_ target: RegistryTargets.Target) -> Bool {
      guard target.roots.count <= finalRoots.count, zip(target.roots, finalRoots).allSatisfy({ $0 == $1 }) else {
        return false
      }
      guard let held = target.index, let newFile else { return true }
      return held.bytes != indexBytes && (try? Self.checkForward(held, to: newFile, ours: ours, location: target.location)) != nil
    }

    var states = [TargetState]()
    var reports = [ApplyReport]()
    func state(_ target: RegistryTargets.Target, _ what: String, written: Bool = false, error: String? = nil) -> TargetState {
      let (i, r) = Self.order(written ? indexBytes : target.index?.bytes)
      return TargetState(
        url: target.location, state: what, root_version: written ? root.version : target.rootVersion,
        index_version: i == 0 ? nil : i, revocation_version: r == 0 ? nil : r, error: error)
    }
    for (i, read) in t.targets.enumerated() {
      var target = read
      var attempts = 0
      while true {
        guard let (change, more) = try change(for: target) else {
          states.append(state(target, "already current"))
          break
        }
        do {
          let report = more.isEmpty ? try target.store.apply(change) : try target.store.apply(change, sources: more)
          states.append(state(target, "written", written: true))
          written(target, report)
          reports.append(report)
          break
        } catch {
          let e = error as? TsukuError ?? TsukuError.converting(error)
          // The first target in the canonical order decides a race: this change went through
          // there, so a later target another writer moved to an older state is brought to it.
          if e.code == .conflict, i > 0, attempts < 3, let again = try? RegistryTargets.read(target.store),
            supersedes(again)
          {
            target = again
            attempts += 1
            continue
          }
          states.append(state(target, "failed", error: e.message))
          states += t.targets.dropFirst(i + 1).map { state($0, "not written") }
          failed(states)
          throw TsukuError(e.code, e.message, reason: e.reason, details: e.details + ["targets:"] + states.map(\.line))
        }
      }
      CrashPoint.step("after target \(target.location)")
    }
    return Committed(root: root, reports: reports)
  }

  /// Reads a blob a commit writes (in memory or from its sources) or one the targets hold.
  static func blobReader(objects: [Data], sources: [BlobSource], stores: [any ObjectReader])
    -> (ObjectID, Int, String) throws -> Data
  {
    let memory = Dictionary(objects.map { (SHA256.hash($0), $0) }, uniquingKeysWith: { a, _ in a })
    let bySource = Dictionary(sources.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    return { id, size, what in
      if let d = memory[id] { return d }
      if let s = bySource[id] { return try s.load() }
      var last: Error?
      for store in stores {
        do { return try store.get(id, maxSize: size) } catch { last = error }
      }
      throw last ?? TsukuError(.notFound, "\(what) '\(id.hex)' not found")
    }
  }

  /// Refuses (integrity, rollback) to replace `held` with `new` (whose index and revocation
  /// versions are `ours`) when that would move a store back, or give one version number two
  /// different signed payloads.
  static func checkForward(_ held: VerifiedIndex, to new: IndexFile, ours: (Int, Int), location: String) throws {
    let iv = held.index.version
    let rv = held.revocation?.version ?? 0
    func refuse(_ what: String) -> TsukuError {
      TsukuError(
        .integrity,
        "'\(location)' holds \(what); writing this change there would move it back or give one version two contents, so nothing was written (see 'tsuku registry status'; a newer revocation list on one store alone is carried to all by 'tsuku registry resign --revocation-key …' with every --to)",
        reason: .rollback)
    }
    if iv > ours.0 { throw refuse("index version \(iv), newer than the \(ours.0) this change writes") }
    if iv == ours.0 && held.file.index.payload != new.index.payload { throw refuse("another index version \(iv)") }
    if rv > ours.1 { throw refuse("revocation list version \(rv), newer than the \(ours.1) this change writes") }
    if rv == ours.1, rv > 0, held.file.revocation?.payload != new.revocation?.payload {
      throw TsukuError(
        .integrity,
        "'\(location)' holds another revocation list version \(rv) than the one this change carries, so nothing was written: two lists carry one version (written to one store at a time?); 'tsuku registry revoke' with every --to (of any hash either list holds) merges them into the next version ('tsuku registry status' shows which stores differ)",
        reason: .rollback)
    }
  }

  /// (index version, revocation list version) of an `index.json`, (0, 0) for none.
  static func order(_ index: Data?) -> (Int, Int) {
    guard let index, let file = try? IndexFile.parse(index, what: "index.json") else { return (0, 0) }
    let i = file.index.payloadBytes.flatMap { try? IndexPayload.parse($0, what: "index") }?.version ?? 0
    let r = file.revocation?.payloadBytes.flatMap { try? RevocationPayload.parse($0, what: "revocation") }?.version ?? 0
    return (i, r)
  }

  /// The blobs a lagging target lacks when its new `index.json` pins a tree another target
  /// already holds (a re-sign, a revocation, a copy of the newest index): what that tree pins
  /// minus what the target's own index pins, read from a target that holds them and checked
  /// against their hash as they are written. A publish carries every blob its new tree pins.
  final class CatchUp {
    let targets: RegistryTargets
    let tree: ObjectID?
    let carried: Bool
    private var pinned: [ObjectID: PinnedBlob]?

    init(targets: RegistryTargets, tree: ObjectID?, carried: Bool) {
      self.targets = targets
      self.tree = tree
      self.carried = carried
    }

    func missing(in target: RegistryTargets.Target) throws -> [BlobSource] {
      guard !carried, let tree, let holder = targets.newestIndexHolder, let newest = holder.index,
        newest.index.tree.sha256 == tree, target.index?.index.tree.sha256 != tree
      else { return [] }
      let stores = [holder.store] + targets.targets.map(\.store).filter { $0.location != holder.location }
      if pinned == nil { pinned = try IndexContents.load(newest, from: stores).pinned }
      // What the target's own index pins it holds; an index whose blobs do not all read is
      // counted as pinning nothing (the store skips what it already has).
      let have = target.index.flatMap { try? IndexContents.load($0, from: [target.store]).pinned } ?? [:]
      return pinned!.values.filter { have[$0.id] == nil }.map { p in
        BlobSource(id: p.id, size: p.size, origin: "\(p.label) in '\(holder.location)'") {
          var last: Error?
          for s in stores {
            do { return try s.get(p.id, maxSize: p.size) } catch { last = error }
          }
          throw last ?? TsukuError(.notFound, "blob '\(p.id.hex)' not found")
        }
      }
    }
  }

  /// Writes the blobs to each target (nothing names them yet, so no precondition; a git
  /// target commits them as `stage`) and the unchecked change to a staged file at `path`,
  /// made against the newest `index.json` among the targets, for `registry sign` to add
  /// signatures to. Returns one report per target (empty when there was no blob to write).
  @discardableResult
  func stage(to t: RegistryTargets, path: String) throws -> [ApplyReport] {
    var reports = [ApplyReport]()
    for target in t.targets {
      if objects.isEmpty && sources.isEmpty {
        reports.append(ApplyReport())
        continue
      }
      let change = StoreChange(objects: objects, message: "stage")
      reports.append(sources.isEmpty ? try target.store.apply(change) : try target.store.apply(change, sources: sources))
    }
    if let file {
      try Staged(base: t.index.map { SHA256.hash($0.bytes) }, index: file, sign: sign, signingRoot: t.root).write(to: path)
    } else if let root = roots.first {
      try Staged(root: root, signingRoot: t.root).write(to: path)
    }
    return reports
  }

  /// `commit`, or with `stage`, `stage` to that file.
  func commitOrStage(to t: RegistryTargets, now: Date, stage: String?) throws {
    if let stage {
      try self.stage(to: t, path: stage)
    } else {
      try commit(to: t, now: now)
    }
  }

  /// Checks `file` as `check` says; returns the index tree it pins when the index section
  /// was checked.
  private func verify(_ file: IndexFile, bytes: Data, root: TrustedRoot, now: Date) throws -> ObjectID? {
    if case .revocationSection = check, let env = file.revocation {
      _ = try env.verify(as: .revocation, role: .revocation, root: root.payload, what: "the new revocation list")
      return nil
    }
    let source: String
    if case .client(let s) = check { source = s } else { source = "the new index" }
    return try IndexVerifier.verify(bytes, root: root, state: TrustState(), now: now, source: source).index.tree.sha256
  }

  /// The expiry `days` from `now`; the one range every signed document's `--expires-days`
  /// is held to.
  static func expiry(days: Int, now: Date) throws -> Date {
    guard (1...3650).contains(days) else {
      throw TsukuError(.usage, "invalid --expires-days '\(days)': expected 1 to 3650")
    }
    return now.addingTimeInterval(Double(days) * 86400)
  }

  /// Refuses a key that is not one of `role`'s keys in `root`.
  static func checkSigners(_ keys: [SigningKey], role: Role, root: TrustedRoot) throws {
    let ids = root.payload.roles[role.rawValue]?.keyids ?? []
    for k in keys where !ids.contains(k.keyID) {
      throw TsukuError(
        .usage,
        "key '\(k.keyID.prefix(16))' is not \(role == .index ? "an" : "a") \(role.rawValue) key of root version \(root.version)"
      )
    }
  }

  /// `revocation` as the next version with a new expiry (same list), signed by `keys`.
  static func renewed(_ revocation: RevocationPayload, expires: Date, keys: [SigningKey]) throws
    -> (RevocationPayload, Envelope)
  {
    var r = revocation
    r.version += 1
    r.expires = Timestamp.format(expires)
    r.published_by = .current()
    return (r, try Envelope.sign(type: .revocation, payload: JSON.encode(r), keys: keys))
  }
}

/// One store's state after a multi-store command stopped on a failure, for the error's detail
/// lines and `--json`.
public struct TargetState: Codable, Sendable, Equatable {
  public var url: String
  /// `written`, `already current`, `failed` or `not written`.
  public var state: String
  public var root_version: Int
  public var index_version: Int?
  public var revocation_version: Int?
  /// Why it failed (a `failed` store only).
  public var error: String?

  /// `'URL': failed (root version 1, index version 4, revocation list version 2): why`.
  public var line: String {
    var v = ["root version \(root_version)"]
    v.append(index_version.map { "index version \($0)" } ?? "no index")
    if let r = revocation_version { v.append("revocation list version \(r)") }
    return "'\(url)': \(state) (\(v.joined(separator: ", ")))" + (error.map { ": \($0)" } ?? "")
  }
}
