import Foundation

/// What a publisher or a sync writes in one go. Blobs first, then documents, `index.json` last,
/// so a reader never sees an index that names a blob the store lacks.
public struct StoreChange: Sendable {
  /// What `index.json` must be before the change is applied; otherwise the store refuses
  /// with a `.conflict` error. This is how a publisher that lost a race finds out.
  public enum Precondition: Sendable, Equatable {
    case none
    case indexAbsent
    case indexHash(ObjectID)
  }

  /// What `log/checkpoint` must be before the change is applied, checked in the same atomic
  /// step as `precondition` (under the directory's lock, on the git tip the commit is made on,
  /// with `If-Match` on the bucket's ETag); otherwise the store refuses with a `.conflict`
  /// error and writes nothing after the check.
  public enum CheckpointCondition: Sendable, Equatable {
    /// Not checked.
    case any
    /// Exactly the bytes with this SHA-256: the compare-and-swap of a witness's write-back, so
    /// a checkpoint another writer put there since it was read (a publish's longer log,
    /// another witness's cosignature) is never overwritten.
    case bytes(ObjectID)
  }

  public var objects: [Data]
  public var documents: [(DocumentName, Data)]
  public var precondition: Precondition
  /// A one-line description, used as the commit message by the git backend.
  public var message: String
  /// The author and committer time of the commit the git backend makes (nil: now), so a
  /// replay of old snapshots keeps their dates. Other backends ignore it.
  public var time: Date?
  /// Retention for backends that keep history (git): when set, the committed tree keeps only
  /// these blobs and the change's own `objects`; every other `objects/` entry is dropped from
  /// the tree (history still holds it). Other backends ignore it: they delete with `remove`.
  public var keepOnly: Set<ObjectID>?
  /// Who made the change, kept with `index.json` where a backend keeps per-object metadata (an
  /// S3 bucket: `x-amz-meta-NAME` headers, names in lower case, values printable ASCII). The
  /// git backend has the commit message instead; a directory keeps none.
  public var metadata: [(name: String, value: String)] = []
  /// The condition on `log/checkpoint` (see `CheckpointCondition`).
  public var checkpoint: CheckpointCondition = .any
  /// Log files removed once every document is written, `index.json` and the checkpoint
  /// included (never before; in the same commit on git), best effort: a removal that fails is
  /// left for the next change. Only the partial tiles a full tile of this change supersedes
  /// (C2SP tlog-tiles), which a reader of an older checkpoint replaces with that full tile's
  /// prefix; any other name is ignored.
  public var removals: [DocumentName] = []

  /// `removals` that name a partial log tile, the only files a change may remove.
  public var partialTileRemovals: [DocumentName] {
    removals.filter { n in if case .log(let p) = n { p.path.contains(".p/") } else { false } }
  }

  public init(
    objects: [Data] = [], documents: [(DocumentName, Data)] = [], precondition: Precondition = .none,
    message: String = "update registry", time: Date? = nil, keepOnly: Set<ObjectID>? = nil
  ) {
    self.objects = objects
    self.documents = documents
    self.precondition = precondition
    self.message = message
    self.time = time
    self.keepOnly = keepOnly
  }

  /// Documents in write order: the log's write-once files first (so a racing writer that
  /// would give one other bytes fails before anything else), then roots and the archive copy,
  /// the log's checkpoint, `index.json` last.
  public var orderedDocuments: [(DocumentName, Data)] {
    func rank(_ n: DocumentName) -> Int { n.isWriteOnce ? 0 : n == .checkpoint ? 2 : n == .index ? 3 : 1 }
    return documents.enumerated().sorted { (rank($0.element.0), $0.offset) < (rank($1.element.0), $1.offset) }.map(\.element)
  }
}

/// Checks a change's checkpoint condition against the current `log/checkpoint` bytes.
func checkCheckpointCondition(_ c: StoreChange.CheckpointCondition, current: Data?, location: String) throws {
  guard case .bytes(let expected) = c else { return }
  let actual = current.map { SHA256.hash($0) }
  if actual != expected {
    throw TsukuError(
      .conflict,
      "log/checkpoint in '\(location)' moved since it was read (expected '\(expected.hex.prefix(12))', found '\(actual?.hex.prefix(12) ?? "none")': a publish or another witness wrote it); nothing was written, run it again"
    )
  }
}
