import Foundation
import Store

/// What the client trusts, and the one place that decides what it trusts next: a root is
/// accepted only along the chain from the trusted one, an `index.json` only when its sections
/// verify against that root, are not older than (nor the same version with other content as)
/// what was trusted, and have not expired; the revocation map only from the revocation list
/// of the accepted index. It does no I/O: bytes come in (through the caller's `fetch` for the
/// root chain), verdicts and the state to save go out.
public struct TrustedMetadata: Sendable {
  /// The root and versions trusted when this command started judging.
  public let startRoot: TrustedRoot
  public let startState: TrustState
  /// The clock reading every expiry is judged against.
  public let now: Date
  public private(set) var root: TrustedRoot
  /// The versions a new index is judged against.
  public private(set) var state: TrustState
  /// The index accepted, once one is.
  public private(set) var index: VerifiedIndex?
  /// Revoked blob -> reason, from the accepted index's revocation list.
  public private(set) var revoked = [ObjectID: String]()

  public init(root: TrustedRoot, state: TrustState, now: Date) {
    (startRoot, startState, self.root, self.state, self.now) = (root, state, root, state, now)
  }

  /// Walks the root chain to the version an index names, one version at a time, each signed
  /// by the old root's keys and its own. Fast-forward recovery: when the walk replaced a
  /// role's keys, the versions signed by the old keys (perhaps leaked, perhaps inflated) no
  /// longer bind the client, so that role's trusted versions start again.
  public mutating func updateRoot(to target: Int, source: String, fetch: (Int) throws -> Data?) throws {
    let (newRoot, _) = try root.walk(to: target, fetch: fetch, source: source)
    if newRoot.version > root.version {
      for role in [Role.index, .revocation]
      where newRoot.payload.roles[role.rawValue] != root.payload.roles[role.rawValue] {
        if role == .index {
          (state.index_version, state.index_payload_sha256) = (0, nil)
        } else {
          (state.revocation_version, state.revocation_payload_sha256) = (0, nil)
        }
      }
    }
    root = newRoot
  }

  /// Accepts `bytes` (an `index.json`) as the current index: signatures under the trusted
  /// root, no rollback, not expired at `now` (see `IndexVerifier`).
  @discardableResult
  public mutating func updateIndex(_ bytes: Data, source: String) throws -> VerifiedIndex {
    try accept(IndexVerifier.verify(bytes, root: root, state: state, now: now, source: source))
  }

  /// Accepts a cached index that no source could confirm, judged as of `confirmed` (when a
  /// source last confirmed it) and, when it is `behind` a version trusted before, without the
  /// version checks: a verified stale cache is served rather than nothing.
  @discardableResult
  public mutating func updateIndex(stale bytes: Data, confirmed: Date, behind: Bool, source: String) throws
    -> VerifiedIndex
  {
    try accept(
      IndexVerifier.verify(
        bytes, root: root, state: behind ? TrustState() : state, now: min(now, confirmed), source: source))
  }

  private mutating func accept(_ v: VerifiedIndex) -> VerifiedIndex {
    index = v
    revoked = [:]
    return v
  }

  /// Takes the revocation list of the accepted index (bytes already checked against its
  /// hash); its revoked blobs become the revocation map.
  public mutating func updateRevocationList(_ bytes: Data, what: String) throws {
    revoked = try RevocationList.parse(bytes, what: what).revokedBlobs
  }

  /// Takes the log checkpoint `LogVerifier` checked against the accepted index and the one
  /// trusted before (nil: the root has no log).
  public mutating func acceptLog(_ checkpoint: Checkpoint?) {
    guard let checkpoint else { return }
    (state.log_size, state.log_root) = (checkpoint.size, Data(checkpoint.rootHash).base64EncodedString())
  }

  /// The state to save once what the accepted index names is in the cache.
  public var advancedState: TrustState { index.map { $0.advancing(state) } ?? state }

  /// True when an index of `version` is older than one trusted before.
  public func isBehind(_ version: Int?) -> Bool { (version ?? 0) < state.index_version }

  /// The trusted set of a cached index whose signatures were checked under `root` but
  /// neither its freshness nor its versions: what a revocation is read from when no index can
  /// be loaded (a revocation never goes stale).
  public static func signaturesOnly(_ bytes: Data, root: TrustedRoot, source: String) throws -> TrustedMetadata {
    var t = TrustedMetadata(root: root, state: TrustState(), now: .distantPast)
    try t.updateIndex(bytes, source: source)
    return t
  }
}
