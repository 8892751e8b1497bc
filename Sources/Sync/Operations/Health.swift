import Foundation
import Store

/// What `tsuku registry health` found about one source.
public struct HealthReport: Codable, Sendable {
  /// `healthy`, `degraded` (slow, or an index that does not verify), `unreachable`.
  public var status: String
  public var source: String
  public var reachable: Bool
  public var latency_ms: Int?
  public var index_version: Int?
  public var index_expires: String?
  public var verified: Bool
  public var error: String?
  /// The root the index was checked against: `--root FILE`, this home's trusted root, or
  /// the built-in sample root, with its version.
  public var root: String?
  /// What to do about the failure, when the check itself may be the mistake: a signature
  /// check against the built-in sample root asks for `--root`.
  public var hint: String?
  /// True when the source answered and verified but too slowly (the `slow:` error). Not part
  /// of the JSON report: it is what `registry validate` reads to raise its slow alert.
  public var slow = false
  /// True when the index or a root did not verify for want of valid signatures. Not part of
  /// the JSON report.
  public var signatureFailed = false

  enum CodingKeys: String, CodingKey {
    case status, source, reachable, latency_ms, index_version, index_expires, verified, error, root, hint
  }

  /// 0 healthy, 2 degraded, 5 unreachable.
  public var exitCode: Int32 {
    switch status {
    case "healthy": 0
    case "unreachable": 5
    default: 2
    }
  }
}

/// The root a health check verifies with, and how to name it in the report.
public struct HealthRoot: Sendable {
  public var root: TrustedRoot
  /// `--root FILE (version N)`, `this home's trusted root (version N)`, `the built-in sample
  /// root (version N)`.
  public var label: String
  /// True for the built-in sample root: a registry of its own is not signed by its keys.
  public var builtIn: Bool

  public init(root: TrustedRoot, label: String, builtIn: Bool) {
    self.root = root
    self.label = label
    self.builtIn = builtIn
  }

  /// `file` if given, else `home`'s trusted root, else the built-in sample root.
  public static func resolve(file: String?, home: Home) throws -> HealthRoot {
    if let file {
      let r = try TrustedRoot.read(file)
      return HealthRoot(root: r, label: "--root \(file) (version \(r.version))", builtIn: false)
    }
    if let r = try home.loadTrust()?.0 {
      return HealthRoot(root: r, label: "this home's trusted root (version \(r.version))", builtIn: false)
    }
    let r = try DefaultRegistry.root()
    return HealthRoot(root: r, label: "the built-in sample root (version \(r.version))", builtIn: true)
  }
}

/// A health check of one source: can it be reached, how fast, and does its index.json verify
/// against a trusted root.
public enum Health {
  /// Checks `source` against `anchor`, naming it in the report.
  public static func check(
    source url: String, anchor: HealthRoot, timeout: TimeInterval, slowAfter: TimeInterval = 2, now: Date,
    environment: [String: String] = ProcessEnvironment.current
  ) -> HealthReport {
    var r = check(source: url, root: anchor.root, timeout: timeout, slowAfter: slowAfter, now: now, environment: environment)
    r.root = anchor.label
    if anchor.builtIn, r.signatureFailed {
      r.hint = "a registry of its own is not signed by the built-in sample root's keys: pass --root FILE with its root"
    }
    return r
  }

  public static func check(
    source url: String, root: TrustedRoot, timeout: TimeInterval, slowAfter: TimeInterval = 2, now: Date,
    environment: [String: String] = ProcessEnvironment.current
  ) -> HealthReport {
    var env = environment
    env["TSUKU_API_TIMEOUT"] = String(Int(min(max(1, timeout.rounded(.up)), TransportOptions.maxTimeout)))
    var r = HealthReport(
      status: "unreachable", source: url, reachable: false, latency_ms: nil, index_version: nil, index_expires: nil,
      verified: false, error: nil)
    let start = Date()
    let bytes: Data?
    let store: any ObjectReader
    do {
      store = try StoreURL.openReader(url, environment: env)
      bytes = try store.readDocument(.index, maxSize: Limits.indexFile)
    } catch let e as TsukuError {
      r.error = e.message
      // Only a source that did not answer is unreachable; one that answered with an error
      // (403, a wrong secret, a missing index) is reachable but degraded.
      r.status = e.code == .unavailable ? "unreachable" : "degraded"
      r.reachable = r.status != "unreachable"
      return r
    } catch {
      r.error = "\(error)"
      return r
    }
    let elapsed = Date().timeIntervalSince(start)
    r.latency_ms = Int(elapsed * 1000)
    r.reachable = true
    guard let bytes else {
      r.status = "degraded"
      r.error = "'\(url)' has no index.json"
      return r
    }
    do {
      let hint = try IndexFile.parse(bytes, what: "index.json from '\(url)'").root_version
      let (latest, _) = try root.walk(
        to: hint, fetch: { try store.readDocument(.root($0), maxSize: Limits.root) }, source: url)
      let v = try IndexVerifier.verify(bytes, root: latest, state: TrustState(), now: now, source: url)
      r.verified = true
      r.index_version = v.index.version
      r.index_expires = v.index.expires
    } catch let e as TsukuError {
      r.error = e.message
      r.status = "degraded"
      r.signatureFailed = e.reason == .badSignature
      return r
    } catch {
      r.error = "\(error)"
      r.status = "degraded"
      return r
    }
    if elapsed > slowAfter {
      r.status = "degraded"
      r.slow = true
      r.error = "slow: \(r.latency_ms!) ms for index.json (more than \(Int(slowAfter * 1000)) ms)"
    } else {
      r.status = "healthy"
    }
    return r
  }
}
