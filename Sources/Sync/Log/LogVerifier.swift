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
/// The proofs are computed from tiles, each cached under `TSUKU_HOME/log/` by its path (a tile
/// never changes), so a tile read once is never fetched again and the check of a cached index
/// works offline. Before reading any, the check works out which tiles the proofs touch
/// (`TileNeeds`); a hash tile is then made locally, not fetched, when its hashes are at hand:
/// the first ones from the narrower copy of it cached by the last sync (a tile only grows to
/// the right), each new one the root of a full tile one level down that is cached or fetched
/// anyway. So a client that syncs at least once every 256 entries fetches the checkpoint and at
/// most two entries bundles (the one its old tree ended in, now wider, and the new right edge)
/// at any size of the log; one that fell further behind also fetches the hash tiles of the
/// whole tiles it skipped.
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
    cache.needed = TileNeeds.tiles(size: cp.size, trustedSize: trusted.log_size)
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

/// The tiles a check reads, worked out before any is: the proofs touch the same tiles whatever
/// the hashes hold, so they are computed once over tiles of the right shape filled with zeros,
/// and the tiles asked for recorded.
enum TileNeeds {
  /// The tiles the check of a checkpoint of `size` leaves reads: its root, the consistency
  /// proof from `trustedSize`, the newest entry and its inclusion proof.
  static func tiles(size: UInt64, trustedSize: UInt64?) -> Set<Tile> {
    let recorder = Recorder()
    let log = TileLog(source: recorder, size: size, leavesFromEntries: true)
    _ = try? log.treeHash(size: size)
    if let old = trustedSize, old > 0, old < size { _ = try? log.consistencyProof(old: old, new: size) }
    if size > 0 {
      _ = try? log.entry(size - 1)
      _ = try? log.inclusionProof(index: size - 1, size: size)
    }
    return recorder.tiles
  }

  final class Recorder: TileSource {
    var tiles = Set<Tile>()
    func readTile(_ tile: Tile) throws -> [UInt8] {
      tiles.insert(tile)
      // An entries bundle of empty entries, or a hash tile of zero hashes.
      return [UInt8](repeating: 0, count: tile.width * (tile.level == nil ? 2 : Merkle.hashSize))
    }
  }
}

/// Tiles read from a source through `read`, kept in `cacheDir` under their paths once the
/// checkpoint they prove verified (`save`): a tile's content never changes, so a cached one is
/// used without asking the source, and a tile that failed a check is never cached.
///
/// A hash tile that is neither cached nor read yet is made from what is at hand when it can be
/// (`make`): hash `j` of a level-`L` tile is the root of the full level-`L-1` tile `j` below it
/// (level 0 from the entries bundle), and the first hashes of a tile are those of the narrower
/// copy of it a former check cached. Only tiles at hand count: cached, read already, or
/// `needed` (read by this check in any case). Nothing made is trusted for itself: like a
/// fetched tile it only enters hashes compared with the signed checkpoint.
final class CachedTiles: TileSource {
  let read: LogVerifier.Read
  let cacheDir: String?
  /// The tiles this check reads whatever happens (`TileNeeds`).
  var needed = Set<Tile>()
  /// Every tile fetched or made by this check: what `save` writes.
  private var held = [Tile: [UInt8]]()
  private var newTiles = [Tile]()

  init(read: @escaping LogVerifier.Read, cacheDir: String?) {
    (self.read, self.cacheDir) = (read, cacheDir)
  }

  /// Writes the tiles fetched and made to the cache, and drops the narrower copies of them
  /// that former checks cached (a wider copy begins with the same hashes).
  func save() {
    guard let cacheDir else { return }
    for t in newTiles {
      guard let data = held[t] else { continue }
      let file = cacheDir + "/" + t.path
      try? FileManager.default.createDirectory(
        atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try? writeFileAtomically(Data(data), to: file)
      for w in cachedWidths(of: t) where w < t.width {
        try? FileManager.default.removeItem(atPath: cacheDir + "/" + Tile(level: t.level, index: t.index, width: w).path)
      }
    }
    newTiles = []
  }

  func readTile(_ tile: Tile) throws -> [UInt8] {
    if let h = held[tile] { return h }
    if let cached = cachedTile(tile) { return cached }
    if let made = try make(tile) {
      keep(tile, made)
      return made
    }
    guard let name = DocumentName(path: "log/" + tile.path), let data = try read(name, StoreTiles.maxTile) else {
      // A partial tile removed once its full tile was written: the full tile's prefix.
      if let full = tile.full, let name = DocumentName(path: "log/" + full.path), let data = try read(name, StoreTiles.maxTile) {
        return try tile.partial(of: [UInt8](data))
      }
      throw TsukuError(.integrity, "the log tile 'log/\(tile.path)' is missing from the source", reason: .malformed)
    }
    keep(tile, [UInt8](data))
    return [UInt8](data)
  }

  private func keep(_ tile: Tile, _ bytes: [UInt8]) {
    held[tile] = bytes
    newTiles.append(tile)
  }

  private func cachedTile(_ tile: Tile) -> [UInt8]? {
    guard let dir = cacheDir, let data = try? FileIO.readFileIfPresent(dir + "/" + tile.path), data.count <= StoreTiles.maxTile
    else { return nil }
    return [UInt8](data)
  }

  /// The widths below 256 at which `tile` (level and index) is cached, and 256 when the full
  /// tile is.
  private func cachedWidths(of tile: Tile) -> [Int] {
    guard let dir = cacheDir else { return [] }
    let full = Tile(level: tile.level, index: tile.index, width: Tile.width)
    var widths = FileManager.default.fileExists(atPath: dir + "/" + full.path) ? [Tile.width] : []
    let partials = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + full.path + ".p")) ?? []
    widths += partials.compactMap { name in Int(name).flatMap { $0 >= 1 && $0 < Tile.width && String($0) == name ? $0 : nil } }
    return widths
  }

  /// The full tile one level below hash `j` of `tile` (level ≥ 1): the entries bundle for
  /// level 1.
  private func child(_ tile: Tile, _ j: Int) -> Tile {
    let level = tile.level! - 1
    return Tile(level: level == 0 ? nil : level, index: tile.index * UInt64(Tile.width) + UInt64(j), width: Tile.width)
  }

  /// Whether `tile` can be had without a request of its own.
  private func atHand(_ tile: Tile) -> Bool {
    held[tile] != nil || needed.contains(tile) || cachedWidths(of: tile).contains(tile.width) || makeable(tile) != nil
  }

  /// For a hash tile that can be made: the cached narrower copy it starts from (width 0: none).
  private func makeable(_ tile: Tile) -> (start: Int, prefix: [UInt8])? {
    guard let level = tile.level, level >= 1 else { return nil }
    var start = 0
    var prefix = [UInt8]()
    for w in cachedWidths(of: tile).sorted(by: >) where w < tile.width {
      let t = Tile(level: tile.level, index: tile.index, width: w)
      if let bytes = held[t] ?? cachedTile(t), bytes.count == w * Merkle.hashSize {
        (start, prefix) = (w, bytes)
        break
      }
    }
    for j in start..<tile.width where !atHand(child(tile, j)) { return nil }
    return (start, prefix)
  }

  /// `tile` made from the tiles at hand, or nil when it cannot be.
  private func make(_ tile: Tile) throws -> [UInt8]? {
    guard let (start, prefix) = makeable(tile) else { return nil }
    var bytes = prefix
    for j in start..<tile.width {
      let c = child(tile, j)
      let raw = try readTile(c)
      let hashes: [[UInt8]]
      if c.level == nil {
        hashes = try EntryBundle.decode(raw, count: Tile.width, what: "'\(c.path)'").map(Merkle.leafHash)
      } else {
        guard raw.count == Tile.width * Merkle.hashSize else {
          throw TsukuError(.integrity, "log tile '\(c.path)' is \(raw.count) bytes, \(Tile.width * Merkle.hashSize) expected")
        }
        hashes = stride(from: 0, to: raw.count, by: Merkle.hashSize).map { Array(raw[$0..<$0 + Merkle.hashSize]) }
      }
      bytes += Merkle.rootHash(hashes[...])
    }
    return bytes
  }
}
