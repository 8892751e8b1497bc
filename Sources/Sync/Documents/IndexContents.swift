import Foundation
import Store

/// What a blob is to the index that pins it.
public enum BlobRole: String, Codable, Sendable {
  case tree, subtree, shard, pack, revocationList = "revocation-list", recipe, golden
}

/// One blob an index pins: its declared size, what it is, and the recipe (and platform) it
/// belongs to, for messages.
public struct PinnedBlob: Sendable, Equatable {
  public var id: ObjectID
  public var size: Int
  public var role: BlobRole
  public var recipe: String?
  public var platform: String?
  /// The shard or subtree prefix, or the golden file's version.
  public var detail: String?

  public init(id: ObjectID, size: Int, role: BlobRole, recipe: String? = nil, platform: String? = nil, detail: String? = nil) {
    self.id = id
    self.size = size
    self.role = role
    self.recipe = recipe
    self.platform = platform
    self.detail = detail
  }

  /// `recipe 'fzf'`, `golden file of 'go' 1.25.7 on linux-amd64`, `index shard '4'`. Made
  /// when asked: a registry pins hundreds of thousands of blobs and few ever need one.
  public var label: String {
    switch role {
    case .tree: "index tree"
    case .revocationList: "revocation list"
    case .subtree: "index subtree '\(detail ?? "")'"
    case .shard: "index shard '\(detail ?? "")'"
    case .pack: "pack '\(id.hex.prefix(16))'"
    case .recipe: "recipe '\(recipe ?? "")'"
    case .golden: "golden file of '\(recipe ?? "")' \(detail ?? "") on \(platform ?? "")"
    }
  }

  /// The order reports list pinned blobs in: by role, then recipe, then the rest.
  public static func reportOrder(_ a: PinnedBlob, _ b: PinnedBlob) -> Bool {
    (a.role.rawValue, a.recipe ?? "", a.detail ?? "", a.platform ?? "", a.id.hex)
      < (b.role.rawValue, b.recipe ?? "", b.detail ?? "", b.platform ?? "", b.id.hex)
  }
}

/// An index and everything it pins: the tree, its shards and packs, the revocation list, and
/// the recipes and golden files of its entries. Read by validation and retention; its entries
/// keep their names, categories and blob references, not their descriptions.
public struct IndexContents: Sendable {
  public let verified: VerifiedIndex
  public let tree: IndexTree
  public let entries: [IndexEntry]
  /// Every pinned blob once (a blob pinned twice keeps its first role).
  public let pinned: [ObjectID: PinnedBlob]

  public var version: Int { verified.index.version }

  /// The pins of `verified` alone (tree and revocation list), before the tree is read.
  public static func topLevel(_ verified: VerifiedIndex) -> [PinnedBlob] {
    var out = [PinnedBlob(id: verified.index.tree.sha256, size: verified.index.tree.size, role: .tree)]
    if let r = verified.revocation {
      out.append(PinnedBlob(id: r.list.sha256, size: r.list.size, role: .revocationList))
    }
    return out
  }

  /// Reads the tree and the shards of `verified` from the first of `stores` that serves each
  /// verified; throws when none does (naming the blob).
  public static func load(_ verified: VerifiedIndex, from stores: [any ObjectReader]) throws -> IndexContents {
    try load(verified) { id, size, what in
      var last: TsukuError?
      for s in stores {
        do { return try s.get(id, maxSize: size) } catch let e as TsukuError { last = e }
      }
      throw last ?? TsukuError(.notFound, "\(what) '\(id.hex)' not found")
    }
  }

  /// Reads the tree and the shards of `verified` through `fetch` (name, declared size, what it
  /// is), which returns verified bytes or throws.
  public static func load(
    _ verified: VerifiedIndex, fetch: (ObjectID, Int, String) throws -> Data
  ) throws -> IndexContents {
    let t = verified.index.tree
    let tree = try IndexTree.parse(try fetch(t.sha256, t.size, "index tree"), what: "index tree '\(t.sha256.hex.prefix(16))'")
    // Only what validation and retention read is decoded: at a hundred thousand recipes the
    // descriptions, homepages and dependency lists are tens of megabytes.
    let (shards, entries) = try withoutActuallyEscaping(fetch) { fetch in
      let walk = IndexWalk(
        tree, names: .init(read: { _ in "index shard" }, parse: { "index shard '\($0.prefix)' ('\($0.sha256.hex.prefix(16))')" }),
        read: { r, what in try fetch(r.sha256, r.size, what) })
      let shards = try walk.shards()
      return (shards, try walk.keptEntries(shards))
    }
    var pinned = [ObjectID: PinnedBlob]()
    func pin(_ b: PinnedBlob) { if pinned[b.id] == nil { pinned[b.id] = b } }
    topLevel(verified).forEach(pin)
    for s in tree.subtrees ?? [] {
      pin(PinnedBlob(id: s.sha256, size: s.size, role: .subtree, detail: s.prefix))
    }
    for s in shards { pin(PinnedBlob(id: s.sha256, size: s.size, role: .shard, detail: s.prefix)) }
    for p in tree.packs ?? [] {
      pin(PinnedBlob(id: p.sha256, size: p.size, role: .pack))
    }
    for e in entries.sorted(by: { $0.name < $1.name }) {
      pin(PinnedBlob(id: e.recipe.sha256, size: e.recipe.size, role: .recipe, recipe: e.name))
      for g in e.golden {
        pin(
          PinnedBlob(id: g.sha256, size: g.size, role: .golden, recipe: e.name, platform: g.platform, detail: g.version))
      }
    }
    return IndexContents(verified: verified, tree: tree, entries: entries, pinned: pinned)
  }

  /// Verifies the bytes of an `index.json` (current or archived) for a maintainer: the
  /// signatures under the root version it names, reached along the store's own chain from
  /// `root/1` (as publish does) or, with `anchor`, from that trusted root (an index naming an
  /// older root than the anchor is refused, as a client refuses it). Expiry and rollback are
  /// not judged here; callers report expiry themselves.
  public static func verify(
    _ bytes: Data, store: any ObjectReader, anchor: TrustedRoot? = nil, what: String, ignoringRevokedKeys: Bool = true
  ) throws -> VerifiedIndex {
    let named = try IndexFile.parse(bytes, what: what).root_version
    let signer: TrustedRoot
    if let anchor {
      signer = try anchor.walk(to: named, fetch: { try store.readDocument(.root($0), maxSize: Limits.root) }, source: store.location).0
    } else {
      signer = try Publisher.currentRoot(of: store, upTo: named)
    }
    return try IndexVerifier.verify(
      bytes, root: signer, state: TrustState(), now: .distantPast, source: store.location,
      ignoringRevokedKeys: ignoringRevokedKeys)
  }
}
