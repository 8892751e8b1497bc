import Foundation
import Store

/// A witness of the registry's transparency log (`tsuku registry witness`, C2SP
/// tlog-cosignature v1): it cosigns a checkpoint only after checking that
///
/// 1. it is a checkpoint of the log the trusted root names (its origin), signed by the root's
///    `log` role threshold;
/// 2. the log's tiles give its root hash;
/// 3. it extends the last checkpoint this witness cosigned for that log: not smaller, the
///    same root at the same size, and a consistency proof (computed from the new log's tiles)
///    from the old tree to the new one that verifies.
///
/// Otherwise it refuses with `.integrity` (exit 4) naming both checkpoints, and signs nothing.
/// The last cosigned checkpoint of each log is kept in `stateDir` (one file per origin,
/// replaced atomically, under a lock), so a witness never cosigns a checkpoint older than, or
/// forked from, one it cosigned: that is what makes its cosignature worth counting.
public struct Witness {
  public let signer: CosignatureSigner
  /// The folder of this witness's state: `<sha256(origin) hex, 32>.checkpoint` per log.
  public let stateDir: String

  public init(signer: CosignatureSigner, stateDir: String) {
    self.signer = signer
    self.stateDir = stateDir
  }

  /// What a run did.
  public struct Outcome: Sendable {
    /// The note with this witness's cosignature added (any other signatures kept).
    public var note: SignedNote
    public var checkpoint: Checkpoint
    /// The checkpoint cosigned before this one, if any.
    public var previous: Checkpoint?
  }

  /// Checks `noteBytes` (the log's `log/checkpoint`, read from `url`) against `root` and the
  /// state, cosigns it at `time` (seconds since the epoch) and records it as the newest
  /// cosigned checkpoint. `tiles` reads the same log's tiles.
  public func cosign(
    _ noteBytes: [UInt8], root: RootPayload, tiles: TileSource, url: String, time: UInt64
  ) throws -> Outcome {
    let note = try SignedNote.parse(noteBytes)
    let cp = try Checkpoint.parse(note.text)
    try Self.checkLogSignatures(note, cp, root: root, url: url)
    return try withStateLock(origin: cp.origin) {
      let previous = try lastCosigned(origin: cp.origin)
      let log = TileLog(source: tiles, size: cp.size)
      if let old = previous {
        try Self.checkExtends(old: old, new: cp, log: log, url: url)
      }
      guard try log.treeHash(size: cp.size) == cp.rootHash else {
        throw TsukuError(
          .integrity, "the log tiles in '\(url)' do not give the root of its checkpoint (\(cp)); not cosigned",
          reason: .hashMismatch)
      }
      let cosigned = note.adding(try signer.cosign(checkpointText: note.text, time: time))
      try record(cosigned, origin: cp.origin)
      return Outcome(note: cosigned, checkpoint: cp, previous: previous)
    }
  }

  /// Writes `cosigned` (the note `read` with this witness's cosignature added) back to the
  /// store's `log/checkpoint`, on the condition that the store still holds exactly `read`
  /// (`StoreChange.CheckpointCondition.bytes`, a compare-and-swap on every backend): a
  /// checkpoint a publish or another witness wrote since is never overwritten. A lost race
  /// is a `.conflict` that says the checkpoint moved and to run again.
  public static func writeBack(_ cosigned: Data, over read: Data, to store: any ObjectWriter, message: String) throws {
    var change = StoreChange(documents: [(.checkpoint, cosigned)], message: message)
    change.checkpoint = .bytes(SHA256.hash(read))
    do {
      try store.apply(change)
    } catch let e as TsukuError where e.code == .conflict {
      throw TsukuError(
        .conflict,
        "log/checkpoint of '\(store.location)' moved while it was being cosigned (a publish or another witness wrote it first); the cosignature was not written, run it again")
    }
  }

  /// The last checkpoint this witness cosigned for `origin`, or nil before the first. A state
  /// file that does not parse, or that this witness did not cosign, is an error (never read as
  /// "no state", which would let the log go back).
  public func lastCosigned(origin: String) throws -> Checkpoint? {
    let path = statePath(origin: origin)
    guard let data = try FileIO.readFileIfPresent(path) else { return nil }
    let fail = { (why: String) in TsukuError(.other, "witness state '\(path)' \(why); move it away only if you know why") }
    guard let note = try? SignedNote.parse([UInt8](data)), let cp = try? Checkpoint.parse(note.text) else {
      throw fail("is not a signed checkpoint")
    }
    guard cp.origin == origin, note.verifiedCosigners([signer.verifier]).count == 1 else {
      throw fail("is not a checkpoint of '\(origin)' cosigned by '\(signer.verifier.name)'")
    }
    return cp
  }

  func statePath(origin: String) -> String {
    stateDir + "/" + String(SHA256.hash(origin).hex.prefix(32)) + ".checkpoint"
  }

  private func record(_ note: SignedNote, origin: String) throws {
    try FileIO.makeDirectories(stateDir)
    try writeFileAtomically(Data(note.serialized()), to: statePath(origin: origin), mode: 0o644, durable: true)
  }

  /// Runs `body` holding an exclusive lock on the log's state, so two runs of one witness take
  /// turns: the second sees what the first cosigned.
  private func withStateLock<T>(origin: String, _ body: () throws -> T) throws -> T {
    try FileIO.makeDirectories(stateDir)
    let lockPath = statePath(origin: origin) + ".lock"
    let fd = try FileIO.open(lockPath, O_RDWR | O_CREAT, failing: "cannot lock")
    defer { close(fd) }
    let e = FileIO.lockRaw(fd, LOCK_EX)
    if e != 0 { throw TsukuError.io("cannot lock", lockPath, errno: e) }
    defer { flock(fd, LOCK_UN) }
    return try body()
  }

  /// The checkpoint's origin is the root's log origin and the root's `log` keys signed it to
  /// their threshold.
  static func checkLogSignatures(_ note: SignedNote, _ cp: Checkpoint, root: RootPayload, url: String) throws {
    guard LogRole.enabled(root), let origin = root.log_origin, let role = root.roles[Role.log.rawValue] else {
      throw TsukuError(.usage, "root version \(root.version) has no transparency log to witness")
    }
    guard cp.origin == origin else {
      throw TsukuError(
        .integrity, "the checkpoint in '\(url)' is of log '\(cp.origin)', root version \(root.version) names '\(origin)'")
    }
    let verifiers = role.keyids.compactMap { id in
      root.keys[id]?.ed25519.flatMap { try? NoteVerifier(name: origin, ed25519: $0) }
    }
    let signed = note.verifiedSigners(verifiers).count
    guard signed >= max(1, role.threshold) else {
      throw TsukuError(
        .integrity,
        "the checkpoint in '\(url)' (\(cp)) has \(signed) valid log signature\(signed == 1 ? "" : "s") of \(role.threshold) required by root version \(root.version); not cosigned",
        reason: .badSignature)
    }
  }

  /// `new` extends `old`: not smaller, the same root at the same size, else a consistency
  /// proof from the new log's tiles that verifies against both roots.
  static func checkExtends(old: Checkpoint, new: Checkpoint, log: TileLog, url: String) throws {
    func refuse(_ what: String, _ reason: TsukuError.Reason) -> TsukuError {
      TsukuError(
        .integrity,
        "the checkpoint in '\(url)' (\(new)) \(what) the one this witness cosigned (\(old)); not cosigned",
        reason: reason)
    }
    if new.size < old.size { throw refuse("is smaller than", .rollback) }
    if new.size == old.size {
      guard new.rootHash == old.rootHash else { throw refuse("forks from", .rollback) }
      return
    }
    guard old.size > 0 else { return }
    let proof: [[UInt8]]
    do { proof = try log.consistencyProof(old: old.size, new: new.size) } catch let e as TsukuError {
      throw refuse("cannot be proved consistent (\(e.message)) with", .rollback)
    }
    guard
      Merkle.verifyConsistency(
        oldSize: old.size, oldRoot: old.rootHash, newSize: new.size, newRoot: new.rootHash, proof: proof)
    else { throw refuse("forks from", .rollback) }
  }
}
