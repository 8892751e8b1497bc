import Foundation
import Store

/// `tsuku registry size-report`: what the binary weighs, what the critical set built into it
/// weighs, and which recipes and golden files of a registry are the largest (operations review,
/// concern 10). Sizes of recipes and golden files are the byte counts the signed index declares
/// (or, for folders, the files' own sizes), so nothing but the index has to be fetched.
public struct SizeReport: Encodable, Sendable {
  /// The running executable.
  public struct Binary: Encodable, Sendable {
    public var path: String?
    public var bytes: Int?
  }

  /// One critical recipe built into the binary, with its golden files.
  public struct EmbeddedRecipe: Encodable, Sendable {
    public var name: String
    public var recipe_bytes: Int
    public var golden_files: Int
    public var golden_bytes: Int
    public var bytes: Int
  }

  /// The critical set compiled into the binary (Sources/Sync/EmbeddedCritical.swift).
  public struct Embedded: Encodable, Sendable {
    public var recipes: Int
    public var golden_files: Int
    /// Decoded bytes of every built-in blob (recipes and golden files).
    public var bytes: Int
    /// Bytes of the generated strings as they sit in the binary (base64, plus the entry list).
    public var stored_bytes: Int
    /// `stored_bytes` as a share of the binary, when its size is known.
    public var percent_of_binary: Double?
    public var largest: [EmbeddedRecipe]
  }

  /// One recipe or golden file.
  public struct Item: Encodable, Sendable {
    public var name: String
    public var category: String
    public var version: String?
    public var platform: String?
    public var bytes: Int
  }

  /// All recipes or all golden files of the measured registry.
  public struct Group: Encodable, Sendable {
    public var count: Int
    public var bytes: Int
    public var median_bytes: Int
    public var largest: [Item]
  }

  /// What the recipes and golden files were measured from: `cache`, `source` or `folders`.
  public var measured: String
  /// The cache folder, the source URL, or the folders.
  public var location: String
  /// The signed index's version (not for folders).
  public var index_version: Int?
  public var binary: Binary
  public var embedded: Embedded
  public var recipes: Group
  public var golden: Group

  /// Builds the report over `entries`, keeping the `top` largest of each kind.
  public static func build(
    entries: [IndexEntry], top: Int, measured: String, location: String, indexVersion: Int?, binaryPath: String?
  ) -> SizeReport {
    let binaryBytes = binaryPath.flatMap { (try? FileManager.default.attributesOfItem(atPath: $0))?[.size] as? Int }
    let embedded = embeddedSummary(top: top, binaryBytes: binaryBytes)
    let recipeItems = entries.map { Item(name: $0.name, category: $0.category.rawValue, version: nil, platform: nil, bytes: $0.recipe.size) }
    let goldenItems = entries.flatMap { e in
      e.golden.map { Item(name: e.name, category: e.category.rawValue, version: $0.version, platform: $0.platform, bytes: $0.size) }
    }
    return SizeReport(
      measured: measured, location: location, index_version: indexVersion,
      binary: Binary(path: binaryPath, bytes: binaryBytes), embedded: embedded,
      recipes: group(recipeItems, top: top), golden: group(goldenItems, top: top))
  }

  static func group(_ items: [Item], top: Int) -> Group {
    let sizes = items.map(\.bytes).sorted()
    let median = sizes.isEmpty ? 0 : (sizes[(sizes.count - 1) / 2] + sizes[sizes.count / 2]) / 2
    let largest = items.sorted {
      ($0.bytes, $1.name, $1.version ?? "", $1.platform ?? "") > ($1.bytes, $0.name, $0.version ?? "", $0.platform ?? "")
    }
    return Group(count: items.count, bytes: sizes.reduce(0, +), median_bytes: median, largest: Array(largest.prefix(top)))
  }

  static func embeddedSummary(top: Int, binaryBytes: Int?) -> Embedded {
    let list = EmbeddedSet.entries.map { e in
      let g = e.golden.reduce(0) { $0 + $1.size }
      return EmbeddedRecipe(
        name: e.name, recipe_bytes: e.recipe.size, golden_files: e.golden.count, golden_bytes: g, bytes: e.recipe.size + g)
    }
    let stored = EmbeddedCritical.entries.utf8.count + EmbeddedCritical.blobs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
    return Embedded(
      recipes: list.count, golden_files: list.reduce(0) { $0 + $1.golden_files }, bytes: EmbeddedSet.size,
      stored_bytes: stored,
      percent_of_binary: binaryBytes.flatMap { $0 > 0 ? (Double(stored) * 1000 / Double($0)).rounded() / 10 : nil },
      largest: Array(list.sorted { ($0.bytes, $1.name) > ($1.bytes, $0.name) }.prefix(top)))
  }

  /// The entries of the index a source serves, verified against `root` (walked forward
  /// through the source's newer roots) like `registry health` does; only `index.json`, the
  /// tree and the shards are read, each checked against its hash. Writes nothing.
  public static func sourceEntries(_ url: String, root: TrustedRoot, now: Date) throws -> (version: Int, entries: [IndexEntry]) {
    let store = try StoreURL.openReader(url)
    guard let bytes = try store.readDocument(.index, maxSize: Limits.indexFile) else {
      throw TsukuError(.notFound, "'\(url)' has no index.json")
    }
    let hint = try IndexFile.parse(bytes, what: "index.json from '\(url)'").root_version
    let (latest, _) = try root.walk(to: hint, fetch: { try store.readDocument(.root($0), maxSize: Limits.root) }, source: url)
    let v = try IndexVerifier.verify(bytes, root: latest, state: TrustState(), now: now, source: url)
    let tree = try IndexTree.parse(try store.get(v.index.tree.sha256, maxSize: v.index.tree.size), what: "index tree")
    let walk = IndexWalk(tree, read: { r, _ in try store.get(r.sha256, maxSize: r.size) })
    let shards = try walk.shards()
    let got = try store.getMany(shards.map { ($0.sha256, $0.size) })
    var entries = [IndexEntry]()
    for s in shards {
      guard let d = got[s.sha256] else { throw TsukuError(.notFound, "'\(url)' lacks index shard '\(s.prefix)'") }
      entries += try walk.entries(of: s, bytes: d)
    }
    return (v.index.version, entries.sorted { $0.name < $1.name })
  }
}
