import Foundation
import Store

extension Client {
  /// The index entry of a recipe; the built-in entry of a critical recipe when no index is
  /// available at all.
  public func entry(_ name: String) throws -> IndexEntry {
    try RecipeName.validate(name)
    let idx: LoadedIndex
    do {
      idx = try loadIndex(for: name)
    } catch let e as TsukuError where e.code == .unavailable {
      if let embedded = EmbeddedSet.entry(name), embeddedSetApplies() {
        usingEmbedded = true
        return embedded
      }
      throw e
    }
    if let e = try lookup(name, idx) { return e }
    // Not in the cached index: a source may have published it since (see `recheckMissing`).
    if recheckMissing(name, idx), let fresh = try? loadIndex(for: name), let e = try lookup(name, fresh) { return e }
    throw notInIndex(name, loaded ?? idx)
  }

  private func lookup(_ name: String, _ idx: LoadedIndex) throws -> IndexEntry? {
    let walk = walk(idx)
    guard let s = try walk.shard(for: name) else { return nil }
    return try walk.entries(of: s).first(where: { $0.name == name })
  }

  private func notInIndex(_ name: String, _ idx: LoadedIndex) -> TsukuError {
    var message = "no recipe named '\(name)' in the registry (index version \(idx.version))"
    if let near = suggestion(for: name, idx) { message += "; did you mean '\(near)'?" }
    return TsukuError(.notFound, message)
  }

  /// The cached recipe name nearest `name` (`Suggest`), read from the cache only: a shard that
  /// is not cached is skipped, nothing is fetched. Indexes of more than `suggestionShards`
  /// shards are not searched, so the cost of a typo stays bounded.
  func suggestion(for name: String, _ idx: LoadedIndex) -> String? {
    let store = cache.store
    let walk = IndexWalk(idx.tree, names: .all("cache"), read: { r, _ in try store.get(r.sha256, maxSize: r.size) })
    guard let shards = try? walk.shards(), shards.count <= Self.suggestionShards else { return nil }
    var names = [String]()
    for s in shards { names += ((try? walk.entries(of: s)) ?? []).map(\.name) }
    return Suggest.closest(to: name, in: names.sorted())
  }

  static let suggestionShards = 4096

  /// The built-in set belongs to the default registry: it is served to a home that trusts
  /// nothing yet, or trusts a root sharing a root key with the one built in.
  func embeddedSetApplies() -> Bool {
    guard let (root, _) = try? home.loadTrust() else { return true }
    guard let builtIn = try? DefaultRegistry.root() else { return false }
    let mine = Set(root.payload.roles[Role.root.rawValue]?.keyids ?? [])
    return root.bytes == builtIn.bytes
      || !mine.isDisjoint(with: builtIn.payload.roles[Role.root.rawValue]?.keyids ?? [])
  }

  /// The revoked hashes of the cached index when no index can be loaded now (its signatures
  /// checked, not its freshness): a revocation never goes stale.
  func cachedRevocations() -> [ObjectID: String] {
    guard let c = try? cache.index(), let (root, _) = try? trust(),
      var trusted = try? TrustedMetadata.signaturesOnly(c.bytes, root: root, source: "cache"),
      let r = trusted.index?.revocation, let data = try? cache.store.get(r.list.sha256, maxSize: r.list.size),
      (try? trusted.updateRevocationList(data, what: "revocation list")) != nil
    else { return [:] }
    return trusted.revoked
  }

  private func checkNotRevoked(_ id: ObjectID, _ what: String, name: String, kind: BlobKind) throws {
    let revoked: [ObjectID: String]
    if let l = loaded {
      revoked = l.revoked
    } else if usingEmbedded {
      revoked = cachedRevocations()
    } else if let l = try? loadIndex() {
      revoked = l.revoked
    } else {
      revoked = cachedRevocations()
    }
    if let reason = revoked[id] {
      try? cache.store.remove([id])
      recorder.record(AuditEvent("revoked", time: now, name: name, sha256: id, detail: reason))
      metrics.revocationRefused(kind)
      throw TsukuError(.integrity, "\(what) (sha256 \(id.hex.prefix(16))) is revoked: \(reason)")
    }
  }

  /// The exact bytes of a recipe.
  public func recipe(_ name: String) throws -> Data {
    let e = try entry(name)
    try checkNotRevoked(e.recipe.sha256, "recipe '\(name)'", name: name, kind: .recipe)
    let d = try blob(e.recipe, what: "recipe '\(name)'", name: name, kind: .recipe)
    noteStale("recipe '\(name)'")
    return d
  }

  /// The exact bytes of a golden file: for `platform`, at `version` or the newest one.
  public func plan(_ name: String, platform: String, version: String?) throws -> Data {
    let e = try entry(name)
    let onPlatform = e.golden.filter { $0.platform == platform }
    if onPlatform.isEmpty {
      let have = Set(e.golden.map(\.platform)).sorted().joined(separator: ", ")
      throw TsukuError(
        .notFound, "no golden file for '\(name)' on '\(platform)'" + (have.isEmpty ? "" : " (platforms: \(have))"))
    }
    let chosen: GoldenRef
    if let version {
      guard let g = onPlatform.first(where: { $0.version == version || "v" + $0.version == version }) else {
        let have = onPlatform.map(\.version).joined(separator: ", ")
        throw TsukuError(
          .notFound, "no golden file for '\(name)' version '\(version)' on '\(platform)' (versions: \(have))")
      }
      chosen = g
    } else {
      chosen = onPlatform.max { VersionOrder.less($0.version, $1.version) }!
    }
    try checkNotRevoked(
      chosen.sha256, "golden file of '\(name)' \(chosen.version) \(platform)", name: name, kind: .golden)
    let d = try blob(
      BlobRef(sha256: chosen.sha256, size: chosen.size), what: "golden file of '\(name)'",
      name: "\(name) \(chosen.version) \(platform)", kind: .golden)
    noteStale("golden file of '\(name)'")
    return d
  }

  /// The golden file of the first of `platforms` that the recipe has one for, and that
  /// platform: how `plan` falls back from a family platform to the generic one.
  public func plan(_ name: String, platforms: [String], version: String?) throws -> (Data, String) {
    let e = try entry(name)
    let have = Set(e.golden.map(\.platform))
    let chosen = platforms.first(where: { have.contains($0) }) ?? platforms[0]
    return (try plan(name, platform: chosen, version: version), chosen)
  }

  /// Every entry of the index, by name.
  public func entries() throws -> [IndexEntry] {
    try walk(try loadIndex()).entries().sorted { $0.name < $1.name }
  }

  /// Entries whose name or description contains `term` (case-insensitive); name matches first.
  public func search(_ term: String) throws -> [IndexEntry] {
    let t = term.lowercased()
    let all = try entries()
    let byName = all.filter { $0.name.contains(t) }
    let byText = all.filter { !$0.name.contains(t) && $0.description.lowercased().contains(t) }
    let exact = byName.filter { $0.name == t }
    return exact + byName.filter { $0.name != t } + byText
  }
}
