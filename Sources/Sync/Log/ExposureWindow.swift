import Foundation
import Store

/// Every index version that pinned a blob, from a store's transparency log alone: what
/// `tsuku registry log --hash` (and `--name`) and `registry revoke` print. The log's
/// checkpoint is checked against the store's root chain (the log keys' threshold), its tiles
/// against the checkpoint, each change list against the hash its entry names.
public struct ExposureWindow: Codable, Sendable, Equatable {
  /// One index version in the log that pinned a matching blob.
  public struct Version: Codable, Sendable, Equatable {
    public var index_version: Int
    /// The revocation list version beside it (a revocation that names the blob leaves it
    /// pinned: the index still names it, clients refuse it).
    public var revocation_version: Int
    public var published: String
    /// The log entry (0-based).
    public var entry: UInt64
    /// What it pinned that matched: `recipe fzf <sha256>`.
    public var pins: [String]
  }

  public var log_origin: String
  public var log_size: UInt64
  public var versions: [Version]
  /// The first index version that pinned it and its date, nil when none did.
  public var first_version: Int?
  public var first_published: String?
  /// The last index version that pinned it; `still_pinned` when that is the newest entry.
  public var last_version: Int?
  public var last_published: String?
  public var still_pinned: Bool

  /// One line: `pinned from index version 3 (2026-...) to 7 (2026-...)` or `... still pinned`.
  public var summary: String {
    guard let f = first_version, let fp = first_published, let l = last_version, let lp = last_published else {
      return "no index version in the log (\(log_size) entries) pinned it"
    }
    let to = still_pinned ? "still pinned by index version \(l) (\(lp))" : "to index version \(l) (\(lp))"
    return "pinned from index version \(f) (\(fp)) \(to); \(versions.count) version\(versions.count == 1 ? "" : "s")"
  }

  /// Reads the log of `store`; `hash` (hex SHA-256) or `name` (a recipe) selects the blobs.
  /// With `anchor` (a trusted root), the store's root chain must hold it byte for byte, so a
  /// store with a root chain of its own cannot answer with a log of its own; without one (a
  /// maintainer command that has checked the store's chain already) the chain from `root/1`.
  public static func read(
    _ store: any ObjectReader, anchor: TrustedRoot?, hash: ObjectID?, name: String?
  ) throws -> ExposureWindow {
    if let anchor {
      let held = try Publisher.currentRoot(of: store, upTo: anchor.version)
      guard held.version == anchor.version, held.bytes == anchor.bytes else {
        throw TsukuError(
          .integrity,
          "'\(store.location)' has another root version \(anchor.version) than the trusted one (or none): its log is not this registry's")
      }
    }
    let root = try Publisher.currentRoot(of: store)
    guard LogRole.enabled(root.payload), let origin = root.payload.log_origin,
      let role = root.payload.roles[Role.log.rawValue]
    else {
      throw TsukuError(.usage, "'\(store.location)' has no transparency log (root version \(root.version) has no log role)")
    }
    guard let (note, cp) = try LogWriter.readCheckpoint(store) else {
      throw TsukuError(.notFound, "'\(store.location)' has no log/checkpoint")
    }
    let verifiers = role.keyids.compactMap { id in
      root.payload.keys[id]?.ed25519.flatMap { try? NoteVerifier(name: origin, ed25519: $0) }
    }
    guard cp.origin == origin, note.verifiedSigners(verifiers).count >= role.threshold else {
      throw TsukuError(
        .integrity, "the log checkpoint in '\(store.location)' (\(cp)) is not signed by the log keys of root version \(root.version)",
        reason: .badSignature)
    }
    let tiles = TileLog(source: StoreTiles(store), size: cp.size, leavesFromEntries: true)
    guard try tiles.treeHash(size: cp.size) == cp.rootHash else {
      throw TsukuError(.integrity, "the log tiles in '\(store.location)' do not give the root of its checkpoint (\(cp))")
    }
    func matches(_ l: ChangeList.Line) -> Bool {
      (hash == nil || l.sha256 == hash) && (name == nil || l.name == name || l.name.hasPrefix(name! + "@"))
    }
    var pinned = Set<ChangeList.Line>()
    var out = ExposureWindow(log_origin: origin, log_size: cp.size, versions: [], still_pinned: false)
    for i in 0..<cp.size {
      let leaf = try LogLeaf.parse(try tiles.entry(i), what: "log entry \(i) in '\(store.location)'")
      let name = try DocumentName.logFile("log/changes/" + leaf.changes.hex)
      guard let data = try store.readDocument(name, maxSize: ChangeList.maxSize), SHA256.hash(data) == leaf.changes else {
        throw TsukuError(.integrity, "'\(name.path)' in '\(store.location)' is missing or does not match log entry \(i)")
      }
      for l in try ChangeList.parse(data, what: "'\(name.path)'").lines where matches(l) {
        var key = l
        key.added = true
        if l.added { pinned.insert(key) } else { pinned.remove(key) }
      }
      if !pinned.isEmpty {
        out.versions.append(
          Version(
            index_version: leaf.indexVersion, revocation_version: leaf.revocationVersion, published: leaf.published, entry: i,
            pins: pinned.sorted().map { "\($0.kind) \($0.name) \($0.sha256.hex)" }))
      }
    }
    out.first_version = out.versions.first?.index_version
    out.first_published = out.versions.first?.published
    out.last_version = out.versions.last?.index_version
    out.last_published = out.versions.last?.published
    out.still_pinned = out.versions.last.map { $0.entry == cp.size - 1 } ?? false
    return out
  }
}
