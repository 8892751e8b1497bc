import Foundation
import Store

/// One index version in a registry's history, as `tsuku registry log` shows it.
public struct PublishLogEntry: Codable, Sendable, Equatable {
  public var index_version: Int
  public var published: String
  public var expires: String
  public var root_version: Int
  public var recipes: Int
  public var golden: Int
  public var revocation_version: Int?
  /// The index keys whose signatures verify (key ids), under the root version it names.
  public var signed_by: [String]
  /// `PublishedBy.identity`; nil when none was recorded.
  public var identity: String?
  /// `PublishedBy.tool`; nil for versions made before the record existed.
  public var tool: String?
  /// SHA-256 of the `index.json` bytes read (the current one, or the archive copy).
  public var sha256: String
  /// `index.json` (true) or its archive copy `index/<N>.index.json`.
  public var current: Bool
}

/// What `tsuku registry log` reads: the current `index.json` and the archive copies of the
/// versions before it, each verified under the root version it names.
public enum PublishLog {
  /// The newest `limit` versions of `store`, newest first. The store's root chain must hold
  /// `anchor` (the trusted root) byte for byte; each version's signatures are checked under its
  /// own root version along that chain (revoked keys still count: this is history). A version
  /// without an archive copy is skipped and named in `missing`.
  public static func read(_ store: any ObjectReader, anchor: TrustedRoot, limit: Int) throws
    -> (entries: [PublishLogEntry], missing: [Int])
  {
    guard (1...10_000).contains(limit) else {
      throw TsukuError(.usage, "invalid --limit '\(limit)': expected 1 to 10000")
    }
    let chainRoot = try Publisher.currentRoot(of: store, upTo: anchor.version)
    guard chainRoot.version == anchor.version, chainRoot.bytes == anchor.bytes else {
      throw TsukuError(
        .integrity,
        "'\(store.location)' has another root version \(anchor.version) than the trusted one (or none): its history is not this registry's")
    }
    guard let currentBytes = try store.readDocument(.index, maxSize: Limits.indexFile) else {
      throw TsukuError(.usage, "'\(store.location)' has no index.json: nothing published yet")
    }
    var roots = [Int: TrustedRoot]()
    func root(_ v: Int) throws -> TrustedRoot {
      if let r = roots[v] { return r }
      let r = try Publisher.currentRoot(of: store, upTo: v)
      roots[v] = r
      return r
    }
    func entry(_ bytes: Data, current: Bool, what: String) throws -> PublishLogEntry {
      let v = try IndexContents.verify(bytes, store: store, what: what)
      let signer = try root(v.file.root_version)
      return PublishLogEntry(
        index_version: v.index.version, published: v.index.published, expires: v.index.expires,
        root_version: v.file.root_version, recipes: v.index.recipes, golden: v.index.golden,
        revocation_version: v.revocation?.version,
        signed_by: v.file.index.validSigners(role: .index, root: signer.payload).sorted(),
        identity: v.index.published_by?.identity, tool: v.index.published_by?.tool, sha256: SHA256.hash(bytes).hex,
        current: current)
    }
    let newest = try entry(currentBytes, current: true, what: "index.json in '\(store.location)'")
    var entries = [newest]
    var missing = [Int]()
    var v = newest.index_version - 1
    while v >= 1, entries.count < limit {
      if let bytes = try store.readDocument(.archivedIndex(v), maxSize: Limits.indexFile) {
        let e = try entry(bytes, current: false, what: "index/\(v).index.json in '\(store.location)'")
        guard e.index_version == v else {
          throw TsukuError(.integrity, "index/\(v).index.json in '\(store.location)' holds index version \(e.index_version)")
        }
        entries.append(e)
      } else {
        missing.append(v)
      }
      v -= 1
    }
    return (entries, missing)
  }
}
