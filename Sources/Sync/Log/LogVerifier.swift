import Foundation
import Store

/// The client's check of the transparency log, run by a sync that accepts a new `index.json`
/// when the trusted root has a `log` role (format.md, "Transparency log"):
///
/// 1. `log/checkpoint` from the same source: a signed note whose text is a checkpoint of the
///    root's log origin, signed by the `log` role's threshold (and, through `witnesses`, the
///    quorum of witnesses this home requires);
/// 2. it is not behind the checkpoint this home trusted (a smaller tree is a rolled-back or
///    truncated log), and the trusted tree is a prefix of it (consistency proof; a different
///    root at the same size, or a proof that does not verify, is a fork: a split view);
/// 3. the accepted `index.json` (its SHA-256 and index version) is a leaf of it (inclusion
///    proof).
///
/// The proofs are computed from tiles (the entries bundle of the right edge and the level-1
/// tile: a sync to a new index costs the checkpoint and one or two tiles), each cached under
/// `TSUKU_HOME/log/` by its path (a tile never changes), so a tile read once is never fetched
/// again and the check of a cached index works offline.
public struct LogVerifier {
  /// Reads a log file from the source: `(name, max bytes) -> bytes or nil`.
  public typealias Read = (DocumentName, Int) throws -> Data?

  let url: String
  let read: Read
  /// The tile cache folder, or nil for none (a dry run).
  let cacheDir: String?

  public init(url: String, cacheDir: String?, read: @escaping Read) {
    (self.url, self.cacheDir, self.read) = (url, cacheDir, read)
  }

  /// The checkpoint to trust next, or nil when `root` has no log. Throws `.integrity` (exit 4)
  /// naming both checkpoints for a fork, a rollback, a truncation or a proof that fails.
  public func verify(
    index bytes: Data, version: Int, root: RootPayload, trusted: TrustState,
    witnesses: (SignedNote, Checkpoint) throws -> Void
  ) throws -> Checkpoint? {
    guard LogRole.enabled(root), let origin = root.log_origin, let role = root.roles[Role.log.rawValue] else { return nil }
    guard let data = try read(.checkpoint, SignedNote.maxBytes) else {
      throw TsukuError(
        .integrity, "'\(url)' has no log/checkpoint, but root version \(root.version) has a transparency log",
        reason: .badSignature)
    }
    let note = try SignedNote.parse([UInt8](data))
    let cp = try Checkpoint.parse(note.text)
    guard cp.origin == origin else {
      throw TsukuError(.integrity, "the log checkpoint from '\(url)' is of log '\(cp.origin)', not '\(origin)'")
    }
    let verifiers = role.keyids.compactMap { id in
      root.keys[id]?.ed25519.flatMap { try? NoteVerifier(name: origin, ed25519: $0) }
    }
    let signed = note.verifiedSigners(verifiers).count
    guard signed >= role.threshold else {
      throw TsukuError(
        .integrity,
        "the log checkpoint from '\(url)' (\(cp)) has \(signed) valid log signature\(signed == 1 ? "" : "s") of \(role.threshold) required by root version \(root.version)",
        reason: .badSignature)
    }
    try witnesses(note, cp)

    let cache = CachedTiles(read: read, cacheDir: cacheDir)
    let tiles = TileLog(source: cache, size: cp.size, leavesFromEntries: true)
    guard try tiles.treeHash(size: cp.size) == cp.rootHash else {
      throw TsukuError(.integrity, "the log tiles from '\(url)' do not give the root of its checkpoint (\(cp))")
    }
    // A trusted checkpoint half recorded (a size without a root that decodes, or the other
    // way round) is refused, not taken as none.
    let oldRootBytes = trusted.log_root.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
    if (trusted.log_size == nil) != (trusted.log_root == nil) || (trusted.log_root != nil && oldRootBytes?.count != Merkle.hashSize) {
      throw TsukuError(.integrity, "this home's trusted log checkpoint is damaged (trust/state.json); run tsuku init --force")
    }
    if let oldSize = trusted.log_size, let oldRoot = oldRootBytes {
      let old = Checkpoint(origin: origin, size: oldSize, rootHash: oldRoot)
      func refuse(_ what: String) -> TsukuError {
        TsukuError(
          .integrity,
          "the log from '\(url)' \(what): its checkpoint (\(cp)) does not extend the one this home trusted (\(old)); refused",
          reason: .rollback)
      }
      if cp.size < oldSize { throw refuse("was rolled back or truncated") }
      let proof = try tiles.consistencyProof(old: oldSize, new: cp.size)
      guard Merkle.verifyConsistency(oldSize: oldSize, oldRoot: oldRoot, newSize: cp.size, newRoot: cp.rootHash, proof: proof)
      else { throw refuse(cp.size == oldSize ? "forked (a split view)" : "forked (a split view, or a proof that does not verify)") }
    }
    try checkIncluded(bytes, version: version, in: tiles, cp)
    cache.save()
    return cp
  }

  /// Finds the entry of `bytes` (searching back from the newest entry, at most the last four
  /// bundles) and verifies its inclusion proof against the checkpoint.
  func checkIncluded(_ bytes: Data, version: Int, in tiles: TileLog, _ cp: Checkpoint) throws {
    let hash = SHA256.hash(bytes)
    var i = cp.size
    let floor = cp.size > 4 * UInt64(Tile.width) ? cp.size - 4 * UInt64(Tile.width) : 0
    while i > floor {
      i -= 1
      let entry = try tiles.entry(i)
      guard let leaf = try? LogLeaf.parse(entry, what: "log entry \(i)"), leaf.indexHash == hash else { continue }
      let proof = try tiles.inclusionProof(index: i, size: cp.size)
      guard leaf.indexVersion == version,
        Merkle.verifyInclusion(index: i, size: cp.size, leafHash: Merkle.leafHash(entry), proof: proof, root: cp.rootHash)
      else {
        throw TsukuError(
          .integrity, "the inclusion proof of index version \(version) (entry \(i)) in the log from '\(url)' (\(cp)) does not verify")
      }
      return
    }
    throw TsukuError(
      .integrity,
      "index version \(version) from '\(url)' (sha256 \(hash.hex.prefix(16))) is not in its transparency log (\(cp)): refused",
      reason: .badSignature)
  }
}

/// Tiles read from a source through `read`, kept in `cacheDir` under their paths once the
/// checkpoint they prove verified (`save`): a tile's content never changes, so a cached one is
/// used without asking the source, and a tile that failed a check is never cached.
final class CachedTiles: TileSource {
  let read: LogVerifier.Read
  let cacheDir: String?
  private var fetched = [(String, Data)]()

  init(read: @escaping LogVerifier.Read, cacheDir: String?) {
    (self.read, self.cacheDir) = (read, cacheDir)
  }

  /// Writes the tiles fetched to the cache.
  func save() {
    guard cacheDir != nil else { return }
    for (file, data) in fetched {
      try? FileManager.default.createDirectory(
        atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try? writeFileAtomically(data, to: file)
    }
    fetched = []
  }

  func readTile(_ tile: Tile) throws -> [UInt8] {
    let file = cacheDir.map { $0 + "/" + tile.path }
    if let file, let cached = try? FileIO.readFileIfPresent(file), cached.count <= StoreTiles.maxTile {
      return [UInt8](cached)
    }
    guard let name = DocumentName(path: "log/" + tile.path), let data = try read(name, StoreTiles.maxTile) else {
      // A partial tile removed once its full tile was written: the full tile's prefix.
      if let full = tile.full, let name = DocumentName(path: "log/" + full.path), let data = try read(name, StoreTiles.maxTile) {
        return try tile.partial(of: [UInt8](data))
      }
      throw TsukuError(.integrity, "the log tile 'log/\(tile.path)' is missing from the source", reason: .malformed)
    }
    if let file { fetched.append((file, data)) }
    return [UInt8](data)
  }
}
