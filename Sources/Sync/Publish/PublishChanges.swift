import Foundation
import Store

/// What a publish changes in one target: the recipes and golden files it adds, changes and
/// removes, by name, against the index that target holds now. The one summary a dry run, a
/// real publish and the removal guard all read.
public struct PublishChanges: Sendable, Codable, Equatable {
  /// Names added, changed (other bytes, or another category for a recipe) and removed, sorted.
  public struct Lists: Sendable, Codable, Equatable {
    public var added: [String] = []
    public var changed: [String] = []
    public var removed: [String] = []
    /// How many there were before the publish.
    public var before = 0
    public init() {}
    /// Whether more than `PublishChanges.maxRemovedShare` of what there was is removed.
    public var removesTooMany: Bool { removed.count * 100 > before * PublishChanges.maxRemovedPercent }
  }

  /// The most a publish removes without `--allow-removals`, in percent of the recipes (or of
  /// the golden files) the target holds.
  public static let maxRemovedPercent = 5

  /// The target's URL.
  public var target: String
  /// The index version the target holds now (nil: none yet).
  public var fromVersion: Int?
  /// Recipes by name.
  public var recipes = Lists()
  /// Golden files as `<tool>/v<version>-<platform>`.
  public var golden = Lists()
  /// Critical recipes that are no longer critical (removed, or moved to the community set).
  public var criticalRemoved: [String] = []

  /// Snake case in JSON, like every other key of tsuku's `--json` output.
  enum CodingKeys: String, CodingKey {
    case target, recipes, golden
    case fromVersion = "from_version"
    case criticalRemoved = "critical_removed"
  }

  /// The changes from `old` (the target's entries; empty when it has no index) to `new`.
  public init(target: String, fromVersion: Int?, old: [IndexEntry], new: [IndexEntry]) {
    self.target = target
    self.fromVersion = fromVersion
    func goldenFiles(_ entries: [IndexEntry]) -> [String: ObjectID] {
      var out = [String: ObjectID]()
      for e in entries { for g in e.golden { out["\(e.name)/v\(g.version)-\(g.platform)"] = g.sha256 } }
      return out
    }
    let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let after = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    recipes = Self.lists(
      before: before.mapValues { "\($0.category.rawValue) \($0.recipe.sha256.hex)" },
      after: after.mapValues { "\($0.category.rawValue) \($0.recipe.sha256.hex)" })
    golden = Self.lists(before: goldenFiles(old).mapValues(\.hex), after: goldenFiles(new).mapValues(\.hex))
    criticalRemoved = old.filter { $0.category == .critical && after[$0.name]?.category != .critical }.map(\.name).sorted()
  }

  private static func lists(before: [String: String], after: [String: String]) -> Lists {
    var l = Lists()
    l.before = before.count
    for (name, value) in after {
      if let was = before[name] {
        if was != value { l.changed.append(name) }
      } else {
        l.added.append(name)
      }
    }
    l.removed = before.keys.filter { after[$0] == nil }
    l.added.sort()
    l.changed.sort()
    l.removed.sort()
    return l
  }

  /// Why this publish needs `--allow-removals`, one line per reason (empty: it does not).
  public var removalProblems: [String] {
    var out = [String]()
    if !criticalRemoved.isEmpty {
      out.append("'\(target)': it removes \(criticalRemoved.count) critical recipe(s): \(criticalRemoved.joined(separator: ", "))")
    }
    for (what, l) in [("recipes", recipes), ("golden files", golden)] where l.removesTooMany {
      out.append(
        "'\(target)': it removes \(l.removed.count) of \(l.before) \(what) (more than \(Self.maxRemovedPercent)%): \(Self.shortList(l.removed))")
    }
    return out
  }

  /// The summary lines a publish prints: counts, then each name with `+`, `~` or `-` (counts
  /// alone for a target with no index yet: everything is added).
  public var lines: [String] {
    var out = [
      "\(target) (index version \(fromVersion.map(String.init) ?? "none")): recipes +\(recipes.added.count) ~\(recipes.changed.count) -\(recipes.removed.count), golden files +\(golden.added.count) ~\(golden.changed.count) -\(golden.removed.count)"
    ]
    if fromVersion == nil { return out }
    for (what, l) in [("recipe", recipes), ("golden", golden)] {
      out += l.added.map { "  + \(what) \($0)" } + l.changed.map { "  ~ \(what) \($0)" } + l.removed.map { "  - \(what) \($0)" }
    }
    return out
  }

  static func shortList(_ names: [String], limit: Int = 20) -> String {
    names.count <= limit ? names.joined(separator: ", ") : names.prefix(limit).joined(separator: ", ") + ", and \(names.count - limit) more"
  }
}

extension Publisher {
  /// What publishing `entries` changes in each target (targets with the same index once each).
  static func changes(_ entries: [IndexEntry], targets heads: [RegistryTargets.Target]) throws -> [PublishChanges] {
    var seen = [ObjectID: [IndexEntry]]()
    return try heads.map { h in
      guard let index = h.index else {
        return PublishChanges(target: h.store.location, fromVersion: nil, old: [], new: entries)
      }
      let old =
        try seen[index.indexHash]
        ?? IndexContents.load(index) { id, size, _ in try h.store.get(id, maxSize: size) }.entries
      seen[index.indexHash] = old
      return PublishChanges(target: h.store.location, fromVersion: index.index.version, old: old, new: entries)
    }
  }

  /// Refuses a publish with a file the revocation list revokes, naming the file and the reason.
  static func checkNotRevoked(_ blobs: [BlobSource], list: Data?) throws {
    guard let list else { return }
    let revoked = try RevocationList.parse(list, what: "the revocation list").revokedBlobs
    guard !revoked.isEmpty else { return }
    let hits = blobs.compactMap { b in revoked[b.id].map { "\(b.origin) (\(b.id.hex.prefix(16))): revoked: \($0)" } }
    guard let first = hits.first else { return }
    let more = hits.count > 1 ? "; and \(hits.count - 1) more: " + hits.dropFirst().joined(separator: "; ") : ""
    throw TsukuError(.integrity, "\(first)\(more)")
  }
}
