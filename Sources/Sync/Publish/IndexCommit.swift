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
  /// The date of a git target's commit (nil: now).
  var time: Date?
  /// With a set, a git target's committed tree keeps only these blobs.
  var keepOnly: Set<ObjectID>?
  /// The blobs were written earlier, by staging: a target must already hold the index tree.
  var needsStagedTree = false

  /// What a commit wrote: the newest root after it and one report per target.
  struct Committed {
    var root: TrustedRoot
    var reports: [ApplyReport]
  }

  /// Checks the change against the first target's trusted state (every target holds the same
  /// root), then writes it to each target in order: blobs, new roots, the archive copy of a
  /// new index version, `index.json` last. `written` hears of each target as it is done; a
  /// failure on a later target leaves the earlier ones written.
  @discardableResult
  func commit(
    to heads: [RegistryHead], now: Date, written: (RegistryHead, ApplyReport) -> Void = { _, _ in }
  ) throws -> Committed {
    guard let first = heads.first else { throw TsukuError(.usage, "publish needs at least one --to") }
    var root = first.root
    var rootDocuments = [(DocumentName, Data)]()
    for env in roots {
      let bytes = RootDocuments.encode(env)
      root = try root.next(bytes, what: "the new root")
      rootDocuments.append((.root(root.version), bytes))
    }
    var indexBytes: Data?
    var version: Int?
    if let file {
      let bytes = file.bytes
      let tree = try verify(file, bytes: bytes, root: root, now: now)
      if needsStagedTree, let tree {
        for head in heads where !(try head.store.contains(tree)) {
          throw TsukuError(
            .usage, "'\(head.store.location)' lacks the staged index tree; publish --stage to this store first")
        }
      }
      indexBytes = bytes
      version = file.index.payloadBytes.flatMap { try? IndexPayload.parse($0, what: "the new index").version }
    }
    var reports = [ApplyReport]()
    for head in heads {
      var documents = rootDocuments
      if let indexBytes {
        // The archive rule: a new index version is archived too (`index/<N>.index.json`, for
        // retention and validation); a revocation keeps the index version, whose archive copy
        // already exists.
        if let version, version != head.index?.index.version { documents.append((.archivedIndex(version), indexBytes)) }
        documents.append((.index, indexBytes))
      }
      // A change of roots alone names no index, so it is not guarded by one.
      let change = StoreChange(
        objects: objects, documents: documents, precondition: indexBytes == nil ? .none : head.precondition,
        message: message, time: time, keepOnly: keepOnly)
      let report = sources.isEmpty ? try head.store.apply(change) : try head.store.apply(change, sources: sources)
      written(head, report)
      reports.append(report)
    }
    return Committed(root: root, reports: reports)
  }

  /// Writes the blobs to each target (nothing names them yet, so no precondition; a git
  /// target commits them as `stage`) and the unchecked change to a staged file at `path`,
  /// made against the first target's current `index.json`, for `registry sign` to add
  /// signatures to. Returns one report per target (empty when there was no blob to write).
  @discardableResult
  func stage(to heads: [RegistryHead], path: String) throws -> [ApplyReport] {
    var reports = [ApplyReport]()
    for head in heads {
      if objects.isEmpty && sources.isEmpty {
        reports.append(ApplyReport())
        continue
      }
      let change = StoreChange(objects: objects, message: "stage")
      reports.append(sources.isEmpty ? try head.store.apply(change) : try head.store.apply(change, sources: sources))
    }
    if let file {
      try Staged(
        base: heads.first?.index.map { SHA256.hash($0.bytes) }, index: file, sign: sign, signingRoot: heads.first?.root
      ).write(to: path)
    } else if let root = roots.first {
      try Staged(root: root, signingRoot: heads.first?.root).write(to: path)
    }
    return reports
  }

  /// `commit`, or with `stage`, `stage` to that file.
  func commitOrStage(to head: RegistryHead, now: Date, stage: String?) throws {
    if let stage {
      try self.stage(to: [head], path: stage)
    } else {
      try commit(to: [head], now: now)
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
    return (r, try Envelope.sign(type: .revocation, payload: JSON.encode(r), keys: keys))
  }
}
