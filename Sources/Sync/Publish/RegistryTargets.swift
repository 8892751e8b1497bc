import Foundation
import Store

/// The stores one registry is written to (a bucket, a git history, mirrors), read together so
/// that every writing command computes its new documents once, from the newest verified state
/// among them, and writes the same bytes to each.
///
/// The targets are kept once each, in one canonical order (by location), so every writer
/// writes them in the same order: two writers racing over the same targets meet on the first
/// one, where the conditional write of `index.json` lets one of them through. Each target's
/// root chain is verified; the newest chain must extend every other one byte for byte (a
/// target with another root at some version is refused before anything is written). A target
/// may be empty (no root yet) or have no index.
public struct RegistryTargets: Sendable {
  /// One store and what it holds now.
  public struct Target: Sendable {
    public let store: any ObjectStore
    /// The bytes of root versions 1...n it holds, verified along the chain (empty: no root).
    public let roots: [Data]
    /// Its `index.json`, verified for signatures (not freshness) under the root it names.
    public let index: VerifiedIndex?

    public var location: String { store.location }
    public var rootVersion: Int { roots.count }

    /// What a change to this store requires `index.json` still to be: the bytes read here.
    public var precondition: StoreChange.Precondition {
      index.map { .indexHash(SHA256.hash($0.bytes)) } ?? .indexAbsent
    }
  }

  /// Every target once, ordered by location.
  public let targets: [Target]
  /// The newest root chain (bytes of versions 1...n), which every target's chain is a prefix of.
  public let roots: [Data]
  /// The newest root, verified from version 1; nil when no target has a root yet.
  public let root: TrustedRoot?
  /// The target holding the highest index version (among equals, the newest revocation list,
  /// then the first in order).
  public let newestIndexHolder: Target?
  /// The target holding the highest revocation list version (the first in order among equals).
  public let newestRevocationHolder: Target?

  /// The highest index version among the targets.
  public var index: VerifiedIndex? { newestIndexHolder?.index }
  /// The highest revocation section among the targets.
  public var revocation: RevocationPayload? { newestRevocationHolder?.index?.revocation }

  /// Opens nothing: reads and verifies what each of `stores` holds now (duplicates, by
  /// location, once). Throws when a target's root chain or index does not verify, or when two
  /// targets hold different roots of one version.
  public init(_ stores: [any ObjectStore]) throws {
    var seen = Set<String>()
    let unique = stores.filter { seen.insert($0.location).inserted }.sorted { $0.location < $1.location }
    targets = try unique.map(Self.read)
    let longest = targets.max { $0.roots.count < $1.roots.count }
    roots = longest?.roots ?? []
    for t in targets {
      if let v = Array(zip(t.roots, roots)).firstIndex(where: { $0 != $1 }), let other = longest {
        throw TsukuError(
          .integrity,
          "'\(t.location)' has a root version \(v + 1) other than the one in '\(other.location)'; the targets diverged, nothing written",
          reason: .rollback)
      }
    }
    var root: TrustedRoot?
    for (i, bytes) in roots.enumerated() {
      let what = "root/\(i + 1).root.json in '\(longest!.location)'"
      root = try root.map { try $0.next(bytes, what: what) } ?? TrustedRoot(anchor: bytes, what: what)
    }
    self.root = root
    var newestIndex: Target?
    var newestRevocation: Target?
    for t in targets {
      guard let i = t.index else { continue }
      // Among equal index versions, the one with the newer revocation list.
      let best = (newestIndex?.index?.index.version ?? 0, newestIndex?.index?.revocation?.version ?? 0)
      if (i.index.version, i.revocation?.version ?? 0) > best { newestIndex = t }
      if let r = i.revocation, r.version > newestRevocation?.index?.revocation?.version ?? 0 { newestRevocation = t }
    }
    newestIndexHolder = newestIndex
    newestRevocationHolder = newestRevocation
  }

  /// One store's root chain and index.
  static func read(_ store: any ObjectStore) throws -> Target {
    var roots = [Data]()
    var root: TrustedRoot?
    while let bytes = try store.readDocument(.root(roots.count + 1), maxSize: Limits.root) {
      let what = "root/\(roots.count + 1).root.json in '\(store.location)'"
      root = try root.map { try $0.next(bytes, what: what) } ?? TrustedRoot(anchor: bytes, what: what)
      roots.append(bytes)
    }
    var index: VerifiedIndex?
    if try store.readDocument(.index, maxSize: Limits.indexFile) != nil {
      guard let root else {
        throw TsukuError(.integrity, "'\(store.location)' has an index.json but no root/1.root.json")
      }
      index = try Publisher.currentIndex(of: store, root: root)
    }
    return Target(store: store, roots: roots, index: index)
  }

  /// The newest root; refused (usage) when no target has one yet.
  public func requireRoot() throws -> TrustedRoot {
    guard let root else {
      let loc = targets.first?.location ?? "URL"
      throw TsukuError(
        .usage, "'\(loc)' has no root/1.root.json; run 'tsuku registry init --to \(loc)' first")
    }
    return root
  }

  /// The newest index, for a change signed by `keys` in `role`: refused when no target has
  /// one yet, or when a key is not one of the role's in the newest root.
  func indexToChange(signedBy keys: [SigningKey], as role: Role) throws -> VerifiedIndex {
    let root = try requireRoot()
    guard let index else {
      throw TsukuError(.usage, "'\(targets.first?.location ?? "")' has no index.json yet; publish one first")
    }
    try IndexCommit.checkSigners(keys, role: role, root: root)
    return index
  }

  /// The revocation list blob of the newest revocation section, read from the target holding it.
  func revocationList() throws -> Data? {
    guard let holder = newestRevocationHolder, let r = holder.index?.revocation else { return nil }
    return try holder.store.get(r.list.sha256, maxSize: r.list.size)
  }

  /// Every revocation the targets hold: the newest list, with whatever another target's list
  /// holds that it lacks appended (lists only grow, so this loses nothing when two lists were
  /// written to different stores with one version number); `merged` says something was added.
  func mergedRevocationList() throws -> (list: RevocationList, merged: Bool)? {
    guard let blob = try revocationList() else { return nil }
    var list = try RevocationList.parse(blob, what: "revocation list")
    var merged = false
    for t in targets {
      guard let r = t.index?.revocation, t.location != newestRevocationHolder?.location else { continue }
      let other = try RevocationList.parse(
        try t.store.get(r.list.sha256, maxSize: r.list.size), what: "the revocation list in '\(t.location)'")
      for h in other.hashes where !list.hashes.contains(where: { $0.sha256 == h.sha256 }) {
        list.hashes.append(h)
        merged = true
      }
      for k in other.keys where !list.keys.contains(where: { $0.keyid == k.keyid }) {
        list.keys.append(k)
        merged = true
      }
    }
    return (list, merged)
  }

  /// Whether some target lacks a root version or holds other `index.json` bytes than the
  /// newest.
  public var someTargetLags: Bool {
    targets.contains { $0.roots.count < roots.count || $0.index?.bytes != index?.bytes }
  }

  /// The first target's state as a `RegistryHead` (for staging, which records one base).
  func head(of target: Target) throws -> RegistryHead {
    RegistryHead(store: target.store, root: try requireRoot(), index: target.index)
  }
}
