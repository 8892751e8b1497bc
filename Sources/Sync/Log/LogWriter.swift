import Foundation
import Store

/// The tiles of a store's log, read through its layout (`log/tile/...`): the same files on a
/// directory, a git history, a bucket or an HTTPS mirror.
public struct StoreTiles: TileSource {
  /// A full entries bundle of 256 entries of at most `LogLeaf.maxSize` bytes.
  public static let maxTile = Tile.width * (2 + LogLeaf.maxSize)
  public let store: any ObjectReader

  public init(_ store: any ObjectReader) { self.store = store }

  /// A partial tile that is gone (removed once its full tile was written) is cut from the
  /// full tile.
  public func readTile(_ tile: Tile) throws -> [UInt8] {
    if let name = DocumentName(path: "log/" + tile.path), let data = try store.readDocument(name, maxSize: Self.maxTile) {
      return [UInt8](data)
    }
    if let full = tile.full, let name = DocumentName(path: "log/" + full.path),
      let data = try store.readDocument(name, maxSize: Self.maxTile)
    {
      return try tile.partial(of: [UInt8](data))
    }
    throw TsukuError(.notFound, "log tile 'log/\(tile.path)' not found in '\(store.location)'")
  }
}

/// Appending one entry to a store's log: what every maintainer command that writes an
/// `index.json` adds to its change when the root has a `log` role (`IndexCommit`). The
/// files go through the store's own writes: the tiles and the change list are write-once, the
/// checkpoint is written before `index.json`, so a client that sees the new index finds it
/// in the log.
public enum LogWriter {
  /// The environment variable naming the log's private keys (as `--key` takes them: a path,
  /// `env:NAME`, or several, comma-separated).
  public static let keyVariable = "TSUKU_LOG_KEY"

  /// The log signing keys from `TSUKU_LOG_KEY`, checked against `root`'s log role; none when the
  /// root has no log. A root with a log and no key given is refused: every index written must
  /// be in the log, or clients refuse it.
  static func keys(for root: RootPayload, environment: [String: String] = ProcessEnvironment.current)
    throws -> [SigningKey]
  {
    guard LogRole.enabled(root) else { return [] }
    let specs = (environment[keyVariable] ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
    if specs.isEmpty {
      throw TsukuError(
        .usage,
        "root version \(root.version) has a transparency log: give its key in \(keyVariable) (a key file, or env:NAME) so the new index is logged")
    }
    let keys = try specs.map(KeyFile.readPrivate)
    let ids = root.roles[Role.log.rawValue]?.keyids ?? []
    for k in keys where !ids.contains(k.keyID) {
      throw TsukuError(.usage, "\(keyVariable) key '\(k.keyID.prefix(16))' is not a log key of root version \(root.version)")
    }
    return keys
  }

  /// The store's checkpoint, unverified (a writer checks it against the tiles, a client
  /// against the root's keys): nil for a store without a log.
  public static func readCheckpoint(_ store: any ObjectReader) throws -> (note: SignedNote, checkpoint: Checkpoint)? {
    guard let data = try store.readDocument(.checkpoint, maxSize: SignedNote.maxBytes) else { return nil }
    let note = try SignedNote.parse([UInt8](data))
    return (note, try Checkpoint.parse(note.text))
  }

  /// The log after appending the entry for `index` (its exact bytes): planned once for all
  /// the targets of a change, against the longest log among them (every other target's log
  /// must be a prefix of it), so every store of a registry holds the same log. `fetch` reads
  /// a blob of the new index or of an older one (verified bytes). The store logs must be
  /// sound: each checkpoint signed to the threshold of the `log` role of `root` or of one of
  /// `signedUnder` (the roots the targets held before this change: a checkpoint written before
  /// a log key rotation), and the tiles of each giving the root its checkpoint names.
  /// Otherwise nothing is extended: `.integrity` (exit 4), naming the checkpoint.
  ///
  /// Entries beyond the checkpoint (a publish killed after its write-once tiles, before its
  /// checkpoint and `index.json`) are not overwritten: the entry of the same `index` is reused
  /// as it is (so the run again writes the very same tiles and converges), and the entry of
  /// another index, signed by a maintainer and half written, is kept in the log ahead of the
  /// new one (its tiles and change list are the ones already there). Nothing ever needs a
  /// write-once file replaced, so a racing publisher on a bucket can never be clobbered.
  static func plan(
    stores: [any ObjectReader], root: RootPayload, signedUnder: [RootPayload] = [], index: Data, keys: [SigningKey],
    now: Date, fetch: (ObjectID, Int, String) throws -> Data
  ) throws -> LogPlan? {
    guard let origin = root.log_origin else { return nil }
    var held = [(store: any ObjectReader, checkpoint: Checkpoint)]()
    for store in stores {
      guard let (note, cp) = try readCheckpoint(store) else { continue }
      guard cp.origin == origin else {
        throw TsukuError(
          .integrity, "the log in '\(store.location)' has origin '\(cp.origin)', root version \(root.version) names '\(origin)'")
      }
      try checkSigned(note, cp, roots: [root] + signedUnder, location: store.location)
      guard try TileLog(source: StoreTiles(store), size: cp.size).treeHash(size: cp.size) == cp.rootHash else {
        throw TsukuError(
          .integrity,
          "the log tiles in '\(store.location)' do not give the root of its checkpoint (\(cp)): refusing to extend it, nothing was written",
          reason: .hashMismatch)
      }
      held.append((store, cp))
    }
    let longest = held.max { $0.checkpoint.size < $1.checkpoint.size }
    let base: TileSource = longest.map { StoreTiles($0.store) } ?? MemoryTiles()
    let size = longest?.checkpoint.size ?? 0
    for h in held where h.checkpoint.size < size {
      guard try TileLog(source: base, size: size).treeHash(size: h.checkpoint.size) == h.checkpoint.rootHash else {
        throw TsukuError(
          .integrity,
          "the log in '\(h.store.location)' (\(h.checkpoint)) is not a prefix of the log in '\(longest!.store.location)' (\(longest!.checkpoint)): the stores' logs forked; nothing was written")
      }
    }
    // The change list is against the pins of the index the last entry logged, when a store
    // still has its bytes (index.json or its archive copy); else against nothing.
    var previousPins: Set<ChangeList.Line>?
    if size > 0, let holder = longest?.store {
      let last = try LogLeaf.parse(try TileLog(source: base, size: size).entry(size - 1), what: "log entry \(size - 1)")
      // The index is the log's newest entry already (a store that lags gets the index another
      // one holds): the log is copied, not appended to.
      if last.indexHash == SHA256.hash(index), let note = try holder.readDocument(.checkpoint, maxSize: SignedNote.maxBytes) {
        return LogPlan(
          tiles: base, holder: holder, checkpoint: longest!.checkpoint, note: note,
          newChanges: (ObjectID(bytes: [UInt8](repeating: 0, count: 32)), Data()), heldSizes: heldSizes(held))
      }
      for name in [DocumentName.index, .archivedIndex(last.indexVersion)] {
        if let bytes = try holder.readDocument(name, maxSize: Limits.indexFile), SHA256.hash(bytes) == last.indexHash {
          previousPins = try pins(of: bytes, fetch: fetch)
          break
        }
      }
    }
    // Entries a killed publish left beyond the checkpoint: kept (see above).
    let left = try entriesBeyond(size, in: longest?.store ?? stores.first, base: base, index: index)
    for e in left.entries.dropLast(left.ours ? 1 : 0).map(\.leaf) {
      guard let holder = longest?.store ?? stores.first,
        let data = try holder.readDocument(try .logFile("log/changes/" + e.changes.hex), maxSize: ChangeList.maxSize),
        SHA256.hash(data) == e.changes
      else {
        throw TsukuError(
          .integrity,
          "a log entry beyond the checkpoint of '\((longest?.store ?? stores.first)?.location ?? "")' (index version \(e.indexVersion)) has no change list: nothing was written")
      }
      // The pins after that entry: the change list applied.
      if var pinned = previousPins {
        for l in try ChangeList.parse(data, what: "'log/changes/\(e.changes.hex)'").lines {
          var k = l
          k.added = true
          if l.added { pinned.insert(k) } else { pinned.remove(k) }
        }
        previousPins = pinned
      }
    }
    let file = try IndexFile.parse(index, what: "the new index")
    let payload = try file.index.payloadBytes.map { try IndexPayload.parse($0, what: "the new index") }
    let revocation = try file.revocation?.payloadBytes.map { try RevocationPayload.parse($0, what: "the new revocation list") }
    let changes = ChangeList.diff(old: previousPins ?? [], new: try pins(of: index, fetch: fetch)).bytes
    var leaf = LogLeaf(
      indexVersion: payload?.version ?? 0, revocationVersion: revocation?.version ?? 0, published: Timestamp.format(now),
      indexHash: SHA256.hash(index), changes: SHA256.hash(changes))
    var entry = leaf.bytes
    if left.ours, let same = left.entries.last { (leaf, entry) = same }
    let appended = try TileAppend.append(
      oldSize: size, entries: left.entries.dropLast(left.ours ? 1 : 0).map(\.bytes) + [entry], source: base)
    let checkpoint = Checkpoint(origin: origin, size: appended.size, rootHash: appended.rootHash)
    var note = SignedNote(text: checkpoint.text, signatures: [])
    for k in keys { note.signatures.append(try NoteSigner(name: origin, key: k).sign(checkpoint.text)) }
    return LogPlan(
      tiles: TileAppend.Overlay(tiles: Dictionary(appended.tiles, uniquingKeysWith: { a, _ in a }), base: base),
      holder: longest?.store ?? (left.entries.isEmpty ? nil : stores.first), checkpoint: checkpoint,
      note: Data(note.serialized()), newChanges: (SHA256.hash(changes), changes), heldSizes: heldSizes(held))
  }

  /// At most this many entries beyond a checkpoint are taken up (one per publish killed
  /// between its tiles and its checkpoint, each run again since).
  static let maxEntriesBeyond = 64

  /// The entries a killed publish left past the log's `size` in `store`: read from the
  /// entries bundle each would have grown (`tile/entries/<N>.p/<W+1>`, or the full bundle),
  /// in order, up to and including the entry of `index` itself (`ours`) when there is one.
  /// Each such bundle must extend the log (`base`, the tiles of the checkpoint's `size`) and
  /// the entries before it; one that does not is refused (`.integrity`), as nothing could
  /// ever be appended over it.
  static func entriesBeyond(_ size: UInt64, in store: (any ObjectReader)?, base: TileSource, index: Data) throws
    -> (entries: [(leaf: LogLeaf, bytes: [UInt8])], ours: Bool)
  {
    guard let store else { return ([], false) }
    let hash = SHA256.hash(index)
    let w = UInt64(Tile.width)
    var out = [(leaf: LogLeaf, bytes: [UInt8])]()
    // The entries of the bundle being grown, before position n.
    var bundle = [[UInt8]]()
    if size % w != 0 {
      let t = Tile(level: nil, index: size / w, width: Int(size % w))
      bundle = try EntryBundle.decode(try base.readTile(t), count: t.width, what: "'log/\(t.path)'")
    }
    var n = size
    while out.count < maxEntriesBeyond {
      if n % w == 0 { bundle = [] }
      let t = Tile(level: nil, index: n / w, width: Int(n % w) + 1)
      guard let name = DocumentName(path: "log/" + t.path), let data = try store.readDocument(name, maxSize: StoreTiles.maxTile)
      else { break }
      let what = "'log/\(t.path)' in '\(store.location)' (beyond its checkpoint)"
      let entries = try EntryBundle.decode([UInt8](data), count: t.width, what: what)
      guard entries.count == t.width, Array(entries.dropLast()) == bundle else {
        throw TsukuError(
          .integrity,
          "\(what) does not extend its log: no checkpoint names it, so remove it and run again; nothing was written")
      }
      let leaf = try LogLeaf.parse(entries[entries.count - 1], what: "log entry \(n) of " + what)
      out.append((leaf, entries[entries.count - 1]))
      bundle.append(entries[entries.count - 1])
      if leaf.indexHash == hash { return (out, true) }
      n += 1
    }
    return (out, false)
  }

  /// `note` (the checkpoint `cp` of the store at `location`) carries the threshold of log
  /// signatures of one of `roots`; else `.integrity`, naming the checkpoint.
  static func checkSigned(_ note: SignedNote, _ cp: Checkpoint, roots: [RootPayload], location: String) throws {
    var best = (signed: 0, root: roots[0])
    for root in roots {
      guard LogRole.enabled(root), let origin = root.log_origin, origin == cp.origin, let role = root.roles[Role.log.rawValue]
      else { continue }
      let verifiers = role.keyids.compactMap { id in
        root.keys[id]?.ed25519.flatMap { try? NoteVerifier(name: origin, ed25519: $0) }
      }
      let signed = note.verifiedSigners(verifiers).count
      if signed >= max(1, role.threshold) { return }
      if signed >= best.signed { best = (signed, root) }
    }
    let needed = best.root.roles[Role.log.rawValue]?.threshold ?? 1
    throw TsukuError(
      .integrity,
      "the log checkpoint in '\(location)' (\(cp)) has \(best.signed) valid log signature\(best.signed == 1 ? "" : "s") of \(needed) required by root version \(best.root.version): refusing to extend it, nothing was written",
      reason: .badSignature)
  }

  /// The log size each store held when `plan` checked it, by location.
  private static func heldSizes(_ held: [(store: any ObjectReader, checkpoint: Checkpoint)]) -> [String: UInt64] {
    Dictionary(held.map { ($0.store.location, $0.checkpoint.size) }) { a, _ in a }
  }

  /// The recipe and golden blobs an `index.json` pins, its tree and shards read through
  /// `fetch` (name, declared size, what it is: verified bytes). Signatures are not checked
  /// here: the commit checked them.
  static func pins(of index: Data, fetch: (ObjectID, Int, String) throws -> Data) throws -> Set<ChangeList.Line> {
    let file = try IndexFile.parse(index, what: "the index")
    guard let raw = file.index.payloadBytes else { return [] }
    let payload = try IndexPayload.parse(raw, what: "the index")
    let revRaw = file.revocation?.payloadBytes
    let verified = VerifiedIndex(
      file: file, bytes: index, index: payload, indexHash: SHA256.hash(raw),
      revocation: try revRaw.map { try RevocationPayload.parse($0, what: "the revocation list") },
      revocationHash: revRaw.map { SHA256.hash($0) })
    return ChangeList.pins(try IndexContents.load(verified, fetch: fetch).pinned)
  }
}

extension LogWriter {
  /// The documents that copy the log of `source` (checked: its checkpoint signed by `root`'s log
  /// keys, its tiles giving that checkpoint's root) to `target`, whose own log must be a prefix
  /// of it: what `registry mirror` adds to its change. None when `root` has no log or the
  /// source has none.
  static func copy(from source: any ObjectReader, to target: any ObjectReader, root: RootPayload) throws
    -> [(DocumentName, Data)]
  {
    guard LogRole.enabled(root), let origin = root.log_origin, let role = root.roles[Role.log.rawValue],
      let data = try source.readDocument(.checkpoint, maxSize: SignedNote.maxBytes)
    else { return [] }
    let note = try SignedNote.parse([UInt8](data))
    let cp = try Checkpoint.parse(note.text)
    let verifiers = role.keyids.compactMap { id in root.keys[id]?.ed25519.flatMap { try? NoteVerifier(name: origin, ed25519: $0) } }
    guard cp.origin == origin, note.verifiedSigners(verifiers).count >= role.threshold else {
      throw TsukuError(
        .integrity, "the log checkpoint of '\(source.location)' (\(cp)) is not signed by the log keys of root version \(root.version)",
        reason: .badSignature)
    }
    let tiles = TileLog(source: StoreTiles(source), size: cp.size)
    guard try tiles.treeHash(size: cp.size) == cp.rootHash else {
      throw TsukuError(.integrity, "the log tiles of '\(source.location)' do not give the root of its checkpoint (\(cp))")
    }
    var targetSize: UInt64 = 0
    if let (_, held) = try readCheckpoint(target) {
      if held == cp { return [] }
      targetSize = held.size
      guard held.size <= cp.size, try tiles.treeHash(size: held.size) == held.rootHash else {
        throw TsukuError(
          .integrity,
          "the log of '\(target.location)' (\(held)) is not a prefix of the log of '\(source.location)' (\(cp)): nothing was written",
          reason: .rollback)
      }
    }
    return try LogPlan(
      tiles: StoreTiles(source), holder: source, checkpoint: cp, note: data,
      newChanges: (ObjectID(bytes: [UInt8](repeating: 0, count: 32)), Data()), heldSizes: [target.location: targetSize]
    ).documents(for: target)
  }
}

/// One appended log, and what each store lacks of it.
struct LogPlan {
  let tiles: TileSource
  let holder: (any ObjectReader)?
  let checkpoint: Checkpoint
  /// The signed checkpoint, as written.
  let note: Data
  let newChanges: (ObjectID, Data)
  /// The log size each store held when it was checked, by location: what its documents are
  /// computed from, never read again (a racing writer may have moved it since; the
  /// write-once files then refuse the change).
  let heldSizes: [String: UInt64]

  /// The documents that bring `store`'s log (a prefix of this one, checked by `plan`) to this
  /// one: the tiles it lacks, the change lists of the entries it lacks, the checkpoint.
  func documents(for store: any ObjectReader) throws -> [(DocumentName, Data)] {
    let held = heldSizes[store.location] ?? 0
    guard held <= checkpoint.size else {
      throw TsukuError(.conflict, "the log of '\(store.location)' is longer than the one being written: run it again")
    }
    var docs = [(DocumentName, Data)]()
    let log = TileLog(source: tiles, size: checkpoint.size)
    for i in held..<checkpoint.size {
      let leaf = try LogLeaf.parse(try log.entry(i), what: "log entry \(i)")
      let bytes: Data?
      if leaf.changes == newChanges.0 {
        bytes = newChanges.1
      } else {
        bytes = try holder?.readDocument(try .logFile("log/changes/" + leaf.changes.hex), maxSize: ChangeList.maxSize)
      }
      if let bytes { docs.append((try .logFile("log/changes/" + leaf.changes.hex), bytes)) }
    }
    for level in [nil] + (0..<Tile.height).map({ Optional($0) }) {
      for t in Tile.newTiles(level: level, oldSize: held, size: checkpoint.size) {
        docs.append((try .logFile("log/" + t.path), Data(try tiles.readTile(t))))
      }
    }
    docs.append((.checkpoint, note))
    return docs
  }

  /// The partial tiles the full tiles that `documents(for: store)` writes supersede: removed
  /// from `store` once its new checkpoint and `index.json` are written (C2SP tlog-tiles lets a
  /// log delete them then). A reader that still holds an older checkpoint and finds its
  /// partial tile gone reads the full tile and takes its prefix (`Tile.partial(of:)`), so a
  /// removal never breaks a client; a git store's history keeps them.
  func superseded(for store: any ObjectReader) throws -> [DocumentName] {
    let held = heldSizes[store.location] ?? 0
    var out = [DocumentName]()
    for level in [nil] + (0..<Tile.height).map({ Optional($0) }) {
      // The store has partial tiles of tile N at this level only if its log reached into it.
      let reached = held >> (8 * UInt64(level ?? 0))
      for t in Tile.newTiles(level: level, oldSize: held, size: checkpoint.size)
      where t.width == Tile.width && reached > t.index * UInt64(Tile.width) {
        for w in 1..<Tile.width { out.append(try .logFile("log/" + Tile(level: level, index: t.index, width: w).path)) }
      }
    }
    return out
  }
}
