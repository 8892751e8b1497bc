import Foundation
import Store

/// What changed between two index versions: recipes and golden files added, changed and
/// removed (`tsuku diff`, and the names `update-registry` prints after a sync). Worked out by
/// `PublishChanges`, the summary a publish prints, over the entries of the shards that differ
/// (a shard with the same bytes in both indexes holds no change).
public struct IndexDiff: Sendable, Codable, Equatable {
  /// A golden file: the recipe, the tool version and the platform.
  public struct Golden: Sendable, Codable, Equatable, Comparable, CustomStringConvertible {
    public var name: String
    public var version: String
    public var platform: String
    public var description: String { "\(name) \(version) \(platform)" }
    public static func < (a: Golden, b: Golden) -> Bool {
      (a.name, a.version, a.platform) < (b.name, b.version, b.platform)
    }
  }

  public struct Lists<T: Sendable & Codable & Equatable>: Sendable, Codable, Equatable {
    public var added: [T] = []
    public var changed: [T] = []
    public var removed: [T] = []
    public var count: Int { added.count + changed.count + removed.count }
  }

  public var from_version: Int
  public var to_version: Int
  public var recipes = Lists<String>()
  public var golden = Lists<Golden>()

  public var isEmpty: Bool { recipes.count == 0 && golden.count == 0 }

  /// The changes from the entries `old` to the entries `new`.
  public init(from: Int, to: Int, old: [IndexEntry], new: [IndexEntry]) {
    from_version = from
    to_version = to
    let c = PublishChanges(target: "", fromVersion: from, old: old, new: new)
    recipes = Lists(added: c.recipes.added, changed: c.recipes.changed, removed: c.recipes.removed)
    // PublishChanges names a golden file `<tool>/v<version>-<platform>`; the entries say
    // which tool, version and platform each name is.
    var parts = [String: Golden]()
    for e in old + new {
      for g in e.golden { parts["\(e.name)/v\(g.version)-\(g.platform)"] = Golden(name: e.name, version: g.version, platform: g.platform) }
    }
    func golden(_ keys: [String]) -> [Golden] { keys.compactMap { parts[$0] }.sorted() }
    self.golden = Lists(added: golden(c.golden.added), changed: golden(c.golden.changed), removed: golden(c.golden.removed))
  }

  /// `+ name`, `~ name`, `- name` for recipes, then golden files as `name version platform`;
  /// at most `limit` names of each kind (nil: all), the rest counted with `more`.
  public func lines(limit: Int? = nil, more: String = "") -> [String] {
    var out = [String]()
    func add(_ mark: String, _ what: String, _ names: [String]) {
      guard !names.isEmpty else { return }
      let shown = limit.map { Array(names.prefix($0)) } ?? names
      out += shown.map { "\(mark) \(what)\($0)" }
      if shown.count < names.count { out.append("  and \(names.count - shown.count) more\(more)") }
    }
    add("+", "", recipes.added)
    add("~", "", recipes.changed)
    add("-", "", recipes.removed)
    add("+", "golden ", golden.added.map(\.description))
    add("~", "golden ", golden.changed.map(\.description))
    add("-", "golden ", golden.removed.map(\.description))
    return out
  }

  /// `recipes +1 ~1 -1, golden files +1 ~0 -0`.
  public var counts: String {
    "recipes +\(recipes.added.count) ~\(recipes.changed.count) -\(recipes.removed.count), golden files +\(golden.added.count) ~\(golden.changed.count) -\(golden.removed.count)"
  }
}

extension Home {
  /// The cached index a sync replaced (its exact bytes, verified when it was cached): what
  /// `tsuku diff` compares the cached index with. Kept in the cache, so clearing the cache
  /// forgets it.
  public var previousIndexPath: String { cacheDir + "/previous-index.json" }
}

extension Client {
  /// One end of a diff: a version, or the cached index before or after the last sync.
  public enum DiffEnd: Sendable, Equatable {
    /// The index the last sync replaced (`previous-index.json`).
    case previous
    /// The cached index.
    case current
    case version(Int)
  }

  /// What changed from `from` to `to`. The cached and previous indexes are read from the home;
  /// other versions from the sources' archive (`index/<N>.index.json`); every index verified
  /// against the trusted root (its signatures; the chain walked forward from the trusted root
  /// on the source that serves it). The tree and shards come from the cache, else the sources.
  public func indexDiff(from: DiffEnd, to: DiffEnd) throws -> IndexDiff {
    let (root, _) = try trust()
    let a = try diffIndex(from, root: root)
    let b = try diffIndex(to, root: root)
    let (old, new) = try changedEntries(a, b)
    return IndexDiff(from: a.index.version, to: b.index.version, old: old, new: new)
  }

  /// What the last sync changed (nil when it replaced no index or the index is gone).
  public func lastSyncDiff() -> IndexDiff? {
    guard FileManager.default.fileExists(atPath: home.previousIndexPath) else { return nil }
    return try? indexDiff(from: .previous, to: .current)
  }

  /// The verified index of one end.
  private func diffIndex(_ end: DiffEnd, root: TrustedRoot) throws -> VerifiedIndex {
    let current = try? cache.index()
    let previous = try? FileIO.readFileIfPresent(home.previousIndexPath)
    let cachedVersion = current?.payload?.version
    let previousVersion = previous.flatMap { try? IndexFile.parse($0, what: "previous index") }?.index.payloadBytes
      .flatMap { try? IndexPayload.parse($0, what: "previous index") }?.version
    switch end {
    case .current:
      guard let current else {
        throw TsukuError(.unavailable, "no cached index in '\(home.cacheDir)'; run 'tsuku update-registry'")
      }
      return try verifyLocal(current.bytes, root: root, what: "the cached index '\(home.cacheDir)/index.json'")
    case .previous:
      guard let previous else {
        throw TsukuError(
          .notFound,
          "no previous index in '\(home.cacheDir)': no sync has replaced the cached index yet; give FROM and TO, e.g. 'tsuku diff 1 2'"
        )
      }
      return try verifyLocal(previous, root: root, what: "the previous index '\(home.previousIndexPath)'")
    case .version(let n):
      if n == cachedVersion, let current {
        return try verifyLocal(current.bytes, root: root, what: "the cached index '\(home.cacheDir)/index.json'")
      }
      if n == previousVersion, let previous {
        return try verifyLocal(previous, root: root, what: "the previous index '\(home.previousIndexPath)'")
      }
      return try archivedIndex(n, root: root)
    }
  }

  /// Signatures checked against the trusted root (the home holds no other root).
  private func verifyLocal(_ bytes: Data, root: TrustedRoot, what: String) throws -> VerifiedIndex {
    try IndexContents.verify(bytes, store: cache.store, anchor: root, what: what)
  }

  /// `index/<n>.index.json` from the first source that archives it, verified.
  private func archivedIndex(_ n: Int, root: TrustedRoot) throws -> VerifiedIndex {
    if chain.isEmpty {
      throw TsukuError(
        .unavailable,
        "index version \(n) is not cached and there is no source to fetch it from (\(chain.emptyReason ?? "--offline or TSUKU_SOURCES=off"))"
      )
    }
    var tried = [String]()
    for url in chain.urls {
      let store: any ObjectReader
      let bytes: Data?
      do {
        store = try self.store(url)
        bytes = try store.readDocument(.archivedIndex(n), maxSize: Limits.indexFile)
      } catch let e as TsukuError where e.code == .unavailable || e.code == .notFound {
        tried.append("'\(url)': \(e.message)")
        continue
      }
      guard let bytes else {
        tried.append("'\(url)': no index/\(n).index.json")
        continue
      }
      let what = "index/\(n).index.json from '\(url)'"
      let v: VerifiedIndex
      do {
        v = try IndexContents.verify(bytes, store: store, anchor: root, what: what)
      } catch let e as TsukuError {
        throw TsukuError(e.code, e.message, reason: e.reason, details: e.details + ["refused \(what)"])
      }
      guard v.index.version == n else {
        throw TsukuError(.integrity, "\(what) holds index version \(v.index.version)")
      }
      return v
    }
    throw TsukuError(.notFound, "no source archives index version \(n)", details: tried)
  }

  /// The entries of the shards one index has and the other has not.
  private func changedEntries(_ a: VerifiedIndex, _ b: VerifiedIndex) throws -> ([IndexEntry], [IndexEntry]) {
    let read: IndexTree.Fetch = { ref, what in try self.blob(ref, what: what) }
    func walk(_ v: VerifiedIndex) throws -> (IndexWalk, [IndexTree.Shard]) {
      let tree = try IndexTree.parse(try read(v.index.tree, "index tree"), what: "index tree of version \(v.index.version)")
      let w = IndexWalk(tree, read: read)
      return (w, try w.shards())
    }
    let (wa, sa) = try walk(a)
    let (wb, sb) = try walk(b)
    let ha = Set(sa.map(\.sha256))
    let hb = Set(sb.map(\.sha256))
    return (
      try wa.keptEntries(sa.filter { !hb.contains($0.sha256) }),
      try wb.keptEntries(sb.filter { !ha.contains($0.sha256) })
    )
  }
}
