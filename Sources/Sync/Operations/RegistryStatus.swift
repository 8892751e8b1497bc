import Foundation
import Store

/// What `tsuku registry status` found about one target.
public struct TargetStatus: Codable, Sendable, Equatable {
  /// `agrees`, `lagging`, `diverged`, `invalid` (does not verify), `unreachable`.
  public var status: String
  public var target: String
  public var reachable: Bool
  public var verified: Bool
  /// The newest root version the target holds, verified along its chain from the trusted root.
  public var root_version: Int?
  public var root_expires: String?
  public var index_version: Int?
  public var index_expires: String?
  /// SHA-256 of the `index.json` bytes: equal on every target that agrees.
  public var index_sha256: String?
  public var revocation_version: Int?
  public var revocation_expires: String?
  /// Why the target is not `agrees`, one line each.
  public var problems: [String] = []
  /// SHA-256 of the newest root's bytes (not reported: a different root shows as `diverged`).
  var rootHash: String?

  enum CodingKeys: String, CodingKey {
    case status, target, reachable, verified, root_version, root_expires, index_version, index_expires, index_sha256
    case revocation_version, revocation_expires, problems
  }
}

/// The report of `tsuku registry status`: each target, and whether they all agree.
public struct StatusReport: Codable, Sendable {
  public var agree: Bool
  /// The trusted root every target was verified from (`--root FILE`, this home, or built in).
  public var checked_against: String
  public var targets: [TargetStatus]
  /// 0 all agree and verify, 2 lagging or diverged, 4 a target does not verify, 5 unreachable.
  public var exit_code: Int32
}

/// Reads each target's `index.json` and root chain (read-only), verifies them from one trusted
/// root as `registry health` does, and compares the targets: root version and bytes, the
/// `index.json` bytes, the revocation list version.
public enum RegistryStatus {
  public static func check(
    targets urls: [String], root: TrustedRoot, rootName: String, timeout: TimeInterval, now: Date,
    environment: [String: String] = ProcessEnvironment.current
  ) -> StatusReport {
    var env = environment
    env["TSUKU_API_TIMEOUT"] = String(Int(min(max(1, timeout.rounded(.up)), TransportOptions.maxTimeout)))
    let environment = env
    // All at once: an unreachable target costs its timeout once, not once per target.
    var targets = ParallelMap.map(urls.count, workers: max(1, urls.count)) { i in
      read(urls[i], root: root, now: now, environment: environment)
    }
    compare(&targets)
    let exit: Int32 =
      targets.contains { $0.status == "invalid" } ? 4
      : targets.contains { $0.status == "unreachable" } ? 5 : targets.allSatisfy { $0.status == "agrees" } ? 0 : 2
    return StatusReport(
      agree: exit == 0, checked_against: "root version \(root.version) from \(rootName)", targets: targets, exit_code: exit)
  }

  /// One target alone: reachable, verified, its versions.
  static func read(_ url: String, root anchor: TrustedRoot, now: Date, environment: [String: String]) -> TargetStatus {
    var t = TargetStatus(status: "unreachable", target: url, reachable: false, verified: false)
    let store: any ObjectReader
    let bytes: Data?
    do {
      store = try StoreURL.openReader(url, environment: environment)
      bytes = try store.readDocument(.index, maxSize: Limits.indexFile)
    } catch {
      let e = error as? TsukuError
      t.problems.append(e?.message ?? "\(error)")
      // Only a target that did not answer is unreachable; one that answered with an error
      // (403, a wrong secret) is reachable but does not verify.
      if e?.code != .unavailable {
        t.reachable = true
        t.status = "invalid"
      }
      return t
    }
    t.reachable = true
    do {
      // The newest root the target holds, walked from the trusted root one version at a time.
      var newest = anchor
      while newest.version < anchor.version + Limits.maxRootRotations,
        let next = try store.readDocument(.root(newest.version + 1), maxSize: Limits.root)
      {
        newest = try newest.next(next, what: "root/\(newest.version + 1).root.json from '\(url)'")
      }
      t.root_version = newest.version
      t.root_expires = newest.payload.expires
      t.rootHash = SHA256.hash(newest.bytes).hex
      guard let bytes else {
        t.verified = true
        t.status = "lagging"
        t.problems.append("'\(url)' has no index.json")
        return t
      }
      let v = try IndexContents.verify(
        bytes, store: store, anchor: anchor, what: "index.json from '\(url)'", ignoringRevokedKeys: false)
      t.verified = true
      t.index_version = v.index.version
      t.index_expires = v.index.expires
      t.index_sha256 = SHA256.hash(bytes).hex
      t.revocation_version = v.revocation?.version
      t.revocation_expires = v.revocation?.expires
      // Signatures verify; what a client also refuses is an expired document.
      for (what, date, text) in [
        ("root version \(newest.version)", newest.payload.expiryDate, newest.payload.expires),
        ("index version \(v.index.version)", v.index.expiryDate, v.index.expires),
        ("revocation list version \(v.revocation?.version ?? 0)", v.revocation?.expiryDate, v.revocation?.expires ?? ""),
      ] {
        if let date, date <= now { t.problems.append("'\(url)' has \(what), expired at \(text)") }
      }
      t.status = t.problems.isEmpty ? "agrees" : "invalid"
    } catch {
      t.verified = false
      t.status = "invalid"
      t.problems.append((error as? TsukuError)?.message ?? "\(error)")
    }
    return t
  }

  /// Marks each verified target that lags behind or differs from the newest.
  static func compare(_ targets: inout [TargetStatus]) {
    let read = targets.indices.filter { targets[$0].verified }
    guard !read.isEmpty else { return }
    func newest(_ key: (TargetStatus) -> Int?) -> (value: Int, url: String)? {
      read.compactMap { i in key(targets[i]).map { ($0, targets[i].target) } }.max { $0.0 < $1.0 }.map { ($0.0, $0.1) }
    }
    let root = newest(\.root_version)
    let index = newest(\.index_version)
    let revocation = newest(\.revocation_version)
    let rootHash = read.first { targets[$0].root_version == root?.value }.flatMap { targets[$0].rootHash }
    // The newest index.json: the newest index version, and among those the newest revocation
    // list (a revocation keeps the index version, so a store it has not reached yet lags).
    let indexHash = read.filter { targets[$0].index_version == index?.value }
      .max { (targets[$0].revocation_version ?? 0) < (targets[$1].revocation_version ?? 0) }
      .flatMap { targets[$0].index_sha256 }
    for i in read {
      var t = targets[i]
      var lagging = false
      var diverged = false
      func check(_ what: String, _ mine: Int?, _ top: (value: Int, url: String)?, sameBytes: Bool = true) {
        guard let top else { return }
        guard let mine else {
          lagging = true
          t.problems.append("'\(t.target)' has no \(what), the newest is version \(top.value)")
          return
        }
        if mine < top.value {
          lagging = true
          t.problems.append("'\(t.target)' has \(what) version \(mine), the newest is \(top.value)")
        } else if !sameBytes {
          diverged = true
          t.problems.append("'\(t.target)' has \(what) version \(mine) with other bytes than '\(top.url)'")
        }
      }
      check("root", t.root_version, root, sameBytes: t.rootHash == rootHash)
      if t.index_version != nil {
        let olderList = (t.revocation_version ?? 0) < (revocation?.value ?? 0)
        check(
          "index", t.index_version, index,
          sameBytes: t.index_version != index?.value || t.index_sha256 == indexHash || olderList)
      } else if let index {
        lagging = true
        t.problems[0] += ", the newest is index version \(index.value)"
      }
      // A revocation list of the same version with other bytes shows as other index bytes.
      if t.index_version != nil { check("revocation list", t.revocation_version, revocation) }
      if t.status == "agrees" || t.status == "lagging" { t.status = diverged ? "diverged" : lagging ? "lagging" : t.status }
      targets[i] = t
    }
  }
}
