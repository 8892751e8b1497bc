import Foundation
import NIOHTTP1
import Store
import Sync

/// What the server answers from, taken whole from a verified index and never changed: a
/// refresh builds a new one and swaps it in (`ServeState`). Blob bytes are not held: each
/// response reads them from the cache and checks them against the entries here.
public final class Snapshot: @unchecked Sendable {
  /// A served blob: the signed hash and size, and what names it.
  public struct Blob: Sendable {
    public let ref: BlobRef
    public let name: String
    public let kind: BlobKind
    public let what: String
    /// `"sha256:<hex>"`, worked out once.
    public let etag: String
    /// The headers of a 200 answer (type, ETag, cache control, length), built once: most of
    /// what an answer would otherwise allocate.
    let headers: HTTPHeaders

    init(ref: BlobRef, name: String, kind: BlobKind, what: String) {
      self.ref = ref
      self.name = name
      self.kind = kind
      self.what = what
      etag = ETag.of(ref.sha256)
      var h = HTTPHeaders()
      h.reserveCapacity(4)
      h.add(name: "Content-Type", value: kind == .recipe ? "application/toml" : "application/json")
      for (k, v) in Responder.cacheHeaders(etag) { h.add(name: k, value: v) }
      h.add(name: "Content-Length", value: String(ref.size))
      headers = h
    }
  }

  public let version: Int
  /// Recipes by name.
  public let recipes: [String: Blob]
  /// Golden files by their path in the layout (no leading '/').
  public let plans: [String: Blob]
  /// Revoked hashes and the reason of each.
  public let revoked: [ObjectID: String]
  /// The earliest expiry of the signed index and its revocation section.
  public let expires: Date
  /// When a source last confirmed the index.
  public let confirmedAt: Date
  /// When this snapshot was built (the index verified, every recipe read for the manifest).
  public let verifiedAt: Date
  /// recipes.json for the verified, unrevoked recipes, and its ETag.
  public let manifest: Data
  public let manifestETag: String
  /// The cache the blobs are read from.
  let cache: DirectoryStore

  init(
    version: Int, recipes: [String: Blob], plans: [String: Blob], revoked: [ObjectID: String], expires: Date,
    confirmedAt: Date, verifiedAt: Date, manifest: Data, cache: DirectoryStore
  ) {
    self.version = version
    self.recipes = recipes
    self.plans = plans
    self.revoked = revoked
    self.expires = expires
    self.confirmedAt = confirmedAt
    self.verifiedAt = verifiedAt
    self.manifest = manifest
    manifestETag = ETag.of(SHA256.hash(manifest))
    self.cache = cache
  }

  /// Loads the verified index through a client of the home (which refreshes it from the
  /// sources when the TTL says so, checks revocations, and falls back to the verified cache as
  /// `tsuku show` does), then reads every unrevoked recipe, verified, for the manifest.
  static func load(_ settings: ServeSettings, warn: @escaping @Sendable (String) -> Void) throws -> Snapshot {
    let client = try makeClient(settings, warn: warn)
    defer { client.flush() }
    let loaded = try client.loadIndex()
    let entries = try client.entries()
    let revoked = loaded.revoked
    var recipes = [String: Blob]()
    var plans = [String: Blob]()
    var listed = [GoLayout.ManifestRecipe]()
    for e in entries {
      recipes[e.name] = Blob(ref: e.recipe, name: e.name, kind: .recipe, what: "recipe '\(e.name)'")
      for g in e.golden {
        let path = GoLayout.planPath(name: e.name, category: e.category, version: g.version, platform: g.platform)
        plans[path] = Blob(
          ref: BlobRef(sha256: g.sha256, size: g.size), name: "\(e.name) \(g.version) \(g.platform)", kind: .golden,
          what: "golden file of '\(e.name)' \(g.version) \(g.platform)")
      }
      guard revoked[e.recipe.sha256] == nil else { continue }
      // A recipe that cannot be read verified now (corrupt in the cache, no source) is left
      // out of the manifest; its own path then answers from the refetch (or 500).
      do {
        if let m = GoLayout.manifestRecipe(try client.recipe(e.name)) { listed.append(m) }
      } catch let err as TsukuError {
        warn("\(e.name) left out of recipes.json: \(err.message)")
      }
    }
    let index = loaded.verified.index
    var expires = index.expiryDate ?? client.now
    if let r = loaded.verified.revocation?.expiryDate { expires = min(expires, r) }
    let generated = Timestamp.parse(index.published) ?? client.now
    return Snapshot(
      version: index.version, recipes: recipes, plans: plans, revoked: revoked, expires: expires,
      confirmedAt: loaded.confirmedAt ?? client.now, verifiedAt: client.now,
      manifest: GoLayout.manifest(listed, generatedAt: generated), cache: settings.home.cache)
  }

  /// A client of the served home, its clock read now.
  static func makeClient(_ settings: ServeSettings, warn: @escaping @Sendable (String) -> Void) throws -> Client {
    let chain = try SourceList.resolve(env: settings.env, config: try settings.home.readConfig(), offline: settings.offline)
    return Client(home: settings.home, chain: chain, policy: settings.policy, now: Date(), warn: warn)
  }
}

enum ETag {
  static func of(_ id: ObjectID) -> String { "\"sha256:\(id.hex)\"" }

  /// Whether an If-None-Match value names `etag` (a list, weak tags, or `*`).
  static func matches(_ header: String, _ etag: String) -> Bool {
    for part in header.split(separator: ",") {
      var t = part.trimmingCharacters(in: .whitespaces)
      if t == "*" { return true }
      if t.hasPrefix("W/") { t.removeFirst(2) }
      if t == etag { return true }
    }
    return false
  }
}
