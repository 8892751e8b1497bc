import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// What `tsuku doctor` found: the home, its config, the trusted root, the sources (each asked
/// for its index once, within a bound), the cache and the freshness of its revocations, and
/// for each problem what to do about it.
public struct DoctorReport: Codable, Sendable {
  public struct HomeCheck: Codable, Sendable {
    public var path: String
    public var exists: Bool
    public var writable: Bool
  }
  public struct ConfigCheck: Codable, Sendable {
    public var path: String
    public var present: Bool
    public var parsed: Bool
    public var sources: String?
    public var error: String?
  }
  public struct RootCheck: Codable, Sendable {
    /// `home` (trust/root.json) or `built-in`.
    public var origin: String
    public var version: Int?
    public var expires: String?
    public var days_left: Int?
    public var error: String?
  }
  public struct SourceCheck: Codable, Sendable {
    public var url: String
    /// `healthy`, `degraded`, `unreachable` (as `tsuku registry health` says).
    public var status: String
    public var latency_ms: Int?
    public var index_version: Int?
    public var error: String?
  }
  public struct SourcesCheck: Codable, Sendable {
    /// Where the list comes from: `TSUKU_SOURCES`, `TSUKU_REGISTRY_URL`, `config`, `default`.
    public var from: String
    /// The list as configured (`a,b|c`; `off`).
    public var list: String
    /// The time each probe may take, in seconds.
    public var probe_timeout: Double
    public var sources: [SourceCheck]
  }
  public struct CacheCheck: Codable, Sendable {
    public var path: String
    public var bytes: Int
    public var limit: Int
    public var percent_full: Int
    public var index_version: Int?
    public var index_expires: String?
    public var confirmed_at: String?
  }
  public struct RevocationCheck: Codable, Sendable {
    public var list_version: Int?
    public var list_expires: String?
    /// When a source last confirmed the cached index (and so its revocations).
    public var checked_at: String?
    public var age_seconds: Int?
    public var ttl_seconds: Int
    /// Checked within `TSUKU_REVOCATION_TTL`.
    public var fresh: Bool
  }
  public struct Problem: Codable, Sendable, Equatable {
    /// `home`, `config`, `root`, `sources`, `cache`, `revocations`.
    public var area: String
    public var problem: String
    /// What to do about it.
    public var fix: String
  }

  public var healthy: Bool
  public var home: HomeCheck
  public var config: ConfigCheck
  public var root: RootCheck
  public var sources: SourcesCheck
  public var cache: CacheCheck?
  public var revocations: RevocationCheck?
  public var problems: [Problem]
}

/// The checks of `tsuku doctor`. Only the source probes touch the network: one `index.json`
/// read each, in parallel, each within `probeTimeout` (at most `TSUKU_API_TIMEOUT`).
public enum Doctor {
  public static func check(
    environment env: [String: String] = ProcessEnvironment.current, now: Date, probeTimeout: Double = 3
  ) -> DoctorReport {
    var problems = [DoctorReport.Problem]()
    func problem(_ area: String, _ p: String, _ fix: String) {
      problems.append(DoctorReport.Problem(area: area, problem: p, fix: fix))
    }
    let home = Home.fromEnvironment(env)

    // The home.
    var isDir: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: home.path, isDirectory: &isDir) && isDir.boolValue
    let writable = exists ? access(home.path, W_OK) == 0 : parentWritable(home.path)
    if !writable {
      problem(
        "home", "'\(home.path)' is not writable",
        "make it writable, or point TSUKU_HOME at a writable directory")
    }

    // The config.
    var config = DoctorReport.ConfigCheck(path: home.configPath, present: false, parsed: false)
    var parsedConfig: Config?
    do {
      parsedConfig = try home.readConfig()
      config.present = parsedConfig != nil
      config.parsed = parsedConfig != nil
      config.sources = parsedConfig.map { $0.sources.joined(separator: ",") }
    } catch let e as TsukuError {
      config.present = true
      config.error = e.message
      problem("config", e.message, "fix the file, or move it away and run 'tsuku init --source URL' (init leaves a file it cannot parse unchanged)")
    } catch {
      config.present = true
      config.error = TsukuError.converting(error).message
      problem("config", config.error!, "fix the file, or move it away and run 'tsuku init --source URL' (init leaves a file it cannot parse unchanged)")
    }

    // The trusted root.
    var root = DoctorReport.RootCheck(origin: "home")
    var trusted: TrustedRoot?
    do {
      if let (r, _) = try home.loadTrust() {
        trusted = r
      } else {
        root.origin = "built-in"
        trusted = try DefaultRegistry.root()
      }
    } catch {
      let e = (error as? TsukuError) ?? TsukuError.converting(error)
      root.error = e.message
      problem("root", e.message, "trust the registry's root again: 'tsuku init --root FILE --force'")
    }
    if let r = trusted {
      root.version = r.version
      root.expires = r.payload.expires
      if let exp = r.payload.expiryDate {
        let left = exp.timeIntervalSince(now)
        root.days_left = Int((left / 86400).rounded(.down))
        if left <= 0 {
          problem(
            "root", "trusted root version \(r.version) expired at \(r.payload.expires)",
            "the registry must publish a new root; then run 'tsuku update-registry' (or 'tsuku init --root FILE --force' with it)")
        }
      }
    }

    // The sources.
    var apiTimeout = TransportOptions().totalTimeout
    do { apiTimeout = try TransportOptions.apiTimeout(env) } catch {
      let e = (error as? TsukuError) ?? TsukuError.converting(error)
      problem("sources", e.message, "fix or unset TSUKU_API_TIMEOUT")
    }
    let timeout = min(probeTimeout, apiTimeout)
    var sources = DoctorReport.SourcesCheck(from: "default", list: "", probe_timeout: timeout, sources: [])
    let chain: SourceChain?
    if let s = env["TSUKU_SOURCES"], !s.trimmingCharacters(in: .whitespaces).isEmpty {
      sources.from = "TSUKU_SOURCES"
    } else if let u = env["TSUKU_REGISTRY_URL"], !u.isEmpty {
      sources.from = "TSUKU_REGISTRY_URL"
    } else if let c = parsedConfig, !c.sources.isEmpty {
      sources.from = "config"
    }
    do {
      chain = try SourceList.resolve(env: env, config: parsedConfig, offline: false)
    } catch {
      let e = (error as? TsukuError) ?? TsukuError.converting(error)
      chain = nil
      problem("sources", e.message, "fix \(sources.from == "config" ? "'\(home.configPath)'" : sources.from), or unset it")
    }
    if let chain {
      sources.list = chain.isEmpty ? "off" : chain.description
      if chain.isEmpty {
        if sources.from == "TSUKU_SOURCES" {
          problem("sources", "TSUKU_SOURCES is 'off': no source is used", "unset TSUKU_SOURCES")
        } else {
          problem(
            "sources", "no registry source is configured",
            "choose one: 'tsuku init --source URL' (or set TSUKU_SOURCES)")
        }
      } else if let anchor = trusted {
        let urls = chain.urls
        let reports = ParallelMap.map(urls.count, workers: max(1, urls.count)) { i in
          Health.check(source: urls[i], root: anchor, timeout: timeout, slowAfter: timeout, now: now, environment: env)
        }
        for r in reports {
          sources.sources.append(
            DoctorReport.SourceCheck(
              url: r.source, status: r.status, latency_ms: r.latency_ms, index_version: r.index_version, error: r.error))
          let fix = sourceFix(r, from: sources.from)
          if r.status == "unreachable" {
            problem("sources", "'\(r.source)' does not answer: \(r.error ?? "no answer")", fix)
          } else if r.status != "healthy" {
            problem("sources", "'\(r.source)': \(r.error ?? r.status)", fix)
          }
        }
      }
    }

    // The cache and its revocations.
    var policy = CachePolicy()
    do { policy = try CachePolicy.fromEnvironment(env) } catch {
      let e = (error as? TsukuError) ?? TsukuError.converting(error)
      problem("cache", e.message, "fix or unset the variable it names")
    }
    var cache: DoctorReport.CacheCheck?
    var revocations: DoctorReport.RevocationCheck?
    if exists {
      let local = LocalCache(home: home, access: AccessLog(cacheDir: home.cacheDir))
      let info = local.info(limit: policy.sizeLimit)
      let cached = try? local.index()
      let payload = cached?.payload
      cache = DoctorReport.CacheCheck(
        path: info.path, bytes: info.bytes, limit: info.limit, percent_full: info.percent_full,
        index_version: payload?.version, index_expires: payload?.expires, confirmed_at: info.confirmed_at)
      if info.percent_full >= 90 {
        problem(
          "cache", "the cache is \(info.percent_full)% full (\(ByteSize.describe(info.bytes)) of \(ByteSize.describe(info.limit)))",
          "run 'tsuku cache cleanup', or raise TSUKU_RECIPE_CACHE_SIZE_LIMIT")
      }
      if payload == nil {
        problem("cache", "no cached registry in '\(home.cacheDir)'", "run 'tsuku update-registry'")
      } else if let exp = payload?.expiryDate, exp <= now {
        problem("cache", "the cached index (version \(payload!.version)) expired at \(payload!.expires)", "run 'tsuku update-registry'")
      }
      if payload != nil {
        let checked = info.confirmed_at.flatMap(Timestamp.parse)
        let age = checked.map { now.timeIntervalSince($0) }
        let list = cached?.file?.revocation?.payloadBytes.flatMap { try? RevocationPayload.parse($0, what: "cache") }
        revocations = DoctorReport.RevocationCheck(
          list_version: list?.version, list_expires: list?.expires, checked_at: info.confirmed_at,
          age_seconds: age.map { Int($0) }, ttl_seconds: Int(policy.revocationTTL),
          fresh: age.map { $0 <= policy.revocationTTL } ?? false)
        if let age, age > policy.ttl {
          problem(
            "revocations",
            "revocations last checked \(Duration.describe(age)) ago, past the \(Duration.describe(policy.ttl)) TTL",
            "run 'tsuku update-registry'")
        } else if age == nil {
          problem("revocations", "the cached index was never confirmed by a source", "run 'tsuku update-registry'")
        }
        if let exp = list?.expiryDate, exp <= now {
          problem(
            "revocations", "the cached revocation list (version \(list!.version)) expired at \(list!.expires)",
            "run 'tsuku update-registry'")
        }
      }
    } else {
      problem("home", "'\(home.path)' does not exist yet", "choose a registry: 'tsuku init --source URL' (then 'tsuku update-registry')")
    }

    return DoctorReport(
      healthy: problems.isEmpty, home: DoctorReport.HomeCheck(path: home.path, exists: exists, writable: writable),
      config: config, root: root, sources: sources, cache: cache, revocations: revocations, problems: problems)
  }

  /// What to do about a source that did not answer, or answered wrong.
  static func sourceFix(_ r: HealthReport, from: String) -> String {
    let choose =
      from == "TSUKU_SOURCES" || from == "TSUKU_REGISTRY_URL"
      ? "fix or unset \(from)" : "choose another with 'tsuku init --source URL'"
    if r.status == "unreachable" { return "check the URL and the network, or \(choose)" }
    if r.signatureFailed {
      return "it serves another registry: trust its root with 'tsuku init --root FILE --source URL --force', or \(choose)"
    }
    if r.slow { return "it answers slowly: check the network, or \(choose)" }
    if r.error?.contains("expired") == true { return "the registry must publish again; then run 'tsuku update-registry'" }
    return "check the source, or \(choose)"
  }

  /// Whether the nearest existing folder above `path` is writable (a home not made yet).
  static func parentWritable(_ path: String) -> Bool {
    var p = (path as NSString).deletingLastPathComponent
    while !p.isEmpty && !FileManager.default.fileExists(atPath: p) {
      let up = (p as NSString).deletingLastPathComponent
      if up == p { break }
      p = up
    }
    return access(p.isEmpty ? "." : p, W_OK) == 0
  }
}
