import Foundation
import Store
import Synchronization

/// How long each stage of a validation may take, in seconds.
public struct StageTimeouts: Sendable, Equatable {
  public var health: Double = 10
  public var index: Double = 60
  public var objects: Double = 900
  public var golden: Double = 120
  public init() {}
}

/// What `tsuku registry validate` is asked to do.
public struct ValidateOptions: Sendable {
  public var source: String
  /// Validated too when both are reachable; validated instead (a degraded run) when the source
  /// is unreachable.
  public var fallback: String?
  /// The trusted root the index must verify against.
  public var root: TrustedRoot
  public var exclusions = GoldenExclusions()
  /// Bucket bytes above 80% of this raise an alert.
  public var quota: Int?
  /// Alert when the index, the revocation list or the root expires within this many days.
  public var warnDays = 7
  /// A recipe the registry did not have this many days ago is new: missing golden files are
  /// reported for it, not counted as failures. 0: no recipe is new.
  public var newDays = 7
  /// Static credentials that remain (a read-only bucket key, say) and the date each expires
  /// (rotation is due): alert within `warnDays`, and once past it.
  public var credentialExpiries: [(name: String, expires: Date)] = []
  public var platforms = GoldenCoverage.defaultPlatforms
  public var timeouts = StageTimeouts()
  public var now: Date
  public var environment: [String: String]

  public init(
    source: String, fallback: String? = nil, root: TrustedRoot, now: Date,
    environment: [String: String] = ProcessEnvironment.current
  ) {
    self.source = source
    self.fallback = fallback
    self.root = root
    self.now = now
    self.environment = environment
  }
}

/// The nightly check of a published registry: health first, then the index, every pinned
/// object on every reachable target, and golden file coverage. It never hangs (every stage has
/// a deadline, every request a timeout) and never passes silently (an unreachable source is a
/// degraded or skipped run, a timed-out stage a failure).
public enum Validator {
  /// The blobs fetched per batch (remote stores run a batch in parallel).
  static let batch = 128
  static let batchBytes = 16 << 20

  /// `credentials-expiry` alerts for the static credentials whose rotation is due.
  static func credentialAlerts(_ o: ValidateOptions) -> [ValidationReport.Alert] {
    o.credentialExpiries.compactMap { c in
      let days = c.expires.timeIntervalSince(o.now) / 86400
      let at = Timestamp.format(c.expires)
      if days <= 0 {
        return .init(kind: "credentials-expiry", message: "credentials '\(c.name)' expired at \(at); rotate them (operations.md, \"Rotating the static bucket key\")")
      }
      guard days <= Double(o.warnDays) else { return nil }
      return .init(
        kind: "credentials-expiry",
        message: "credentials '\(c.name)' expire at \(at), in \(String(format: "%.1f", days)) days (within \(o.warnDays)); rotate them")
    }
  }

  public static func run(_ o: ValidateOptions) -> ValidationReport {
    var r = ValidationReport(runAt: o.now, source: o.source, fallback: o.fallback)
    var run = Run(options: o, report: r)
    run.all()
    r = run.report
    r.alerts += credentialAlerts(o)
    r.recipes.total = run.entries.count
    r.recipes.failed = Set(r.failures.compactMap(\.recipe)).count
    r.recipes.unchecked = run.unchecked.subtracting(r.failures.compactMap(\.recipe)).count
    r.recipes.passed = max(0, r.recipes.total - r.recipes.failed - r.recipes.unchecked)
    let failed = Set(r.failures.compactMap(\.recipe))
    for category in [Category.critical, .community] {
      var split = ValidationReport.Split()
      for e in run.entries where e.category == category {
        split.total += 1
        if failed.contains(e.name) { split.failed += 1 } else if run.unchecked.contains(e.name) { split.unchecked += 1 } else { split.passed += 1 }
      }
      if category == .critical { r.recipes.critical = split } else { r.recipes.community = split }
    }
    if r.status != "skipped" {
      if r.source.health?.reachable != true {
        r.status = "degraded"
      } else if !r.failures.isEmpty {
        r.status = "failed"
      }
    }
    r.exit_code = r.status == "passed" ? 0 : r.status == "skipped" ? 5 : 2
    r.issue = r.makeIssue()
    return r
  }

  /// The state of one validation run.
  struct Run {
    let options: ValidateOptions
    var report: ValidationReport
    var stores = [String: any ObjectReader]()
    /// The targets whose health check reached them.
    var reachable = Set<String>()
    var reference: (url: String, verified: VerifiedIndex)?
    var contents: IndexContents?
    var entries: [IndexEntry] = []
    /// The platforms each recipe read supports (its bytes are not kept: at a hundred thousand
    /// recipes they would be a hundred megabytes).
    var recipePlatforms = [ObjectID: [String]]()
    var baseline: Set<String>?
    var unchecked = Set<String>()

    init(options: ValidateOptions, report: ValidationReport) {
      self.options = options
      self.report = report
    }

    var urls: [String] { [options.source] + (options.fallback.map { [$0] } ?? []) }

    mutating func all() {
      health()
      if reachable.isEmpty {
        report.status = "skipped"
        let why = report.source.health?.error ?? "unreachable"
        report.reason =
          options.fallback == nil
          ? "source '\(options.source)' unreachable (\(why)) and no --fallback given"
          : "source '\(options.source)' unreachable (\(why)) and fallback '\(options.fallback!)' unreachable (\(report.fallback?.health?.error ?? "unreachable"))"
        for name in ["index", "objects", "golden"] { skip(name, timeout: timeout(name), "nothing reachable") }
        return
      }
      if !reachable.contains(options.source) {
        report.bucket = .init(url: options.source, quota: options.quota, error: "the source is unreachable")
        report.reason = "source '\(options.source)' unreachable (\(report.source.health?.error ?? "unreachable")); validated from the fallback '\(options.fallback!)'"
      }
      if stage("index", { try $0.index($1) }) == false || contents == nil {
        skip("objects", timeout: options.timeouts.objects, "no verified index")
        skip("golden", timeout: options.timeouts.golden, "no verified index")
        return
      }
      if stage("objects", { try $0.objects($1) }) == false {
        // A timeout: the golden check still runs on what was read.
      }
      _ = stage("golden", { try $0.golden($1) })
    }

    func timeout(_ name: String) -> Double {
      switch name {
      case "health": options.timeouts.health
      case "index": options.timeouts.index
      case "objects": options.timeouts.objects
      default: options.timeouts.golden
      }
    }

    mutating func skip(_ name: String, timeout: Double, _ why: String) {
      report.stages.append(.init(name: name, status: "skipped", seconds: 0, timeout_seconds: timeout, detail: why))
    }

    /// Runs a stage with its deadline; false when it timed out.
    mutating func stage(_ name: String, _ body: (inout Run, Deadline) throws -> String?) -> Bool {
      let limit = timeout(name)
      let deadline = Deadline(seconds: limit)
      let before = report.failures.count
      var detail: String?
      var status = "ok"
      do {
        detail = try body(&self, deadline)
      } catch let e as StageTimeout {
        status = "timed_out"
        detail = e.detail
        report.failures.append(.init(kind: "timeout", message: "stage '\(name)' timed out after \(Int(limit)) s: \(e.detail)"))
      } catch let e as TsukuError {
        status = "failed"
        detail = e.message
        report.failures.append(.init(kind: "index-invalid", message: e.message))
      } catch {
        status = "failed"
        detail = "\(error)"
      }
      if status == "ok" && report.failures.count > before { status = "failed" }
      report.stages.append(
        .init(name: name, status: status, seconds: deadline.elapsed, timeout_seconds: limit, detail: detail))
      return status != "timed_out"
    }

    /// The environment of a store opened for a stage: one request may take at most what is
    /// left of the stage (and never more than 30 s).
    func environment(_ d: Deadline) -> [String: String] {
      var env = options.environment
      let configured = Double(env["TSUKU_API_TIMEOUT"] ?? "").flatMap { $0.isFinite && $0 > 0 ? $0 : nil } ?? 30
      env["TSUKU_API_TIMEOUT"] = String(Int(max(1, min(configured, d.remaining, TransportOptions.maxTimeout).rounded(.up))))
      return env
    }

    func open(_ url: String, _ d: Deadline) throws -> any ObjectReader {
      // As a client reads it: blobs that left the tip are served from its recent history.
      let days = (try? GitHistoryDays.fromEnvironment(options.environment)) ?? 90
      return try StoreURL.openReader(url, environment: environment(d), history: .init(days: days, cacheDirectory: nil))
    }

    // MARK: stages

    mutating func health() {
      let d = Deadline(seconds: options.timeouts.health)
      let list = urls
      let (root, timeout, now, env) = (options.root, options.timeouts.health, options.now, options.environment)
      // Both at once: the stage takes as long as the slower one, not the sum.
      let results = ParallelMap.map(list.count, workers: list.count) { i in
        Health.check(source: list[i], root: root, timeout: timeout, now: now, environment: env)
      }
      var detail = [String]()
      for (i, url) in list.enumerated() {
        let h: HealthReport? = results[i]
        if i == 0 { report.source.health = h } else { report.fallback?.health = h }
        guard let h else { continue }
        detail.append("\(i == 0 ? "source" : "fallback") \(h.status)")
        if h.reachable { reachable.insert(url) }
        if h.slow, let e = h.error {
          report.alerts.append(.init(kind: "slow", message: "'\(url)' is \(e)"))
        }
        if i > 0 && !h.reachable && reachable.contains(options.source) {
          report.failures.append(
            .init(kind: "unreachable", target: url, message: "fallback '\(url)' unreachable: \(h.error ?? "no answer"); clients have no fallback"))
        }
      }
      let timedOut = d.elapsed > options.timeouts.health
      report.stages.append(
        .init(
          name: "health", status: timedOut ? "timed_out" : list.allSatisfy(reachable.contains) ? "ok" : "failed",
          seconds: d.elapsed, timeout_seconds: options.timeouts.health, detail: detail.joined(separator: ", ")))
    }

    mutating func index(_ d: Deadline) throws -> String? {
      var verified = [(url: String, v: VerifiedIndex)]()
      for url in urls where reachable.contains(url) {
        try d.check("reading index.json of '\(url)'")
        do {
          let store = try open(url, d)
          stores[url] = store
          guard let bytes = try store.readDocument(.index, maxSize: Limits.indexFile) else {
            report.failures.append(.init(kind: "index-missing", target: url, message: "'\(url)' has no index.json"))
            continue
          }
          let v = try IndexContents.verify(
            bytes, store: store, anchor: options.root, what: "index.json from '\(url)'", ignoringRevokedKeys: false)
          verified.append((url, v))
          setTarget(url) { $0.index_version = v.index.version }
        } catch let e as TsukuError {
          report.failures.append(.init(kind: "index-invalid", target: url, message: e.message))
        }
      }
      guard let best = verified.max(by: { $0.v.index.version < $1.v.index.version }) else {
        return "no index.json verified"
      }
      reference = (best.url, best.v)
      for other in verified where other.v.bytes != best.v.bytes {
        report.failures.append(
          .init(
            kind: "index-mismatch", target: other.url,
            message: "'\(other.url)' serves index version \(other.v.index.version), '\(best.url)' serves \(best.v.index.version)\(other.v.index.version == best.v.index.version ? " with other bytes" : ""): a client that trusted the newer one refuses it"))
      }
      let ordered = [best.url] + urls.filter { $0 != best.url && stores[$0] != nil }
      let loaded: IndexContents
      do {
        loaded = try IndexContents.load(best.v, from: ordered.compactMap { stores[$0] })
      } catch let e as TsukuError {
        report.failures.append(.init(kind: "index-invalid", target: best.url, message: "cannot read the index tree: \(e.message)"))
        return "index version \(best.v.index.version): tree unreadable"
      }
      contents = loaded
      entries = loaded.entries
      summarize(loaded)
      try d.check("looking for the index of \(options.newDays) days ago")
      baseline = newRecipeBaseline(loaded, store: stores[best.url]!, others: ordered.compactMap { stores[$0] }, d)
      return "index version \(best.v.index.version) from '\(best.url)', \(loaded.entries.count) recipes, \(loaded.pinned.count) objects"
    }

    /// The index summary, expiry failures and expiry alerts.
    mutating func summarize(_ c: IndexContents) {
      let v = c.verified
      func left(_ date: Date?) -> Double? { date.map { $0.timeIntervalSince(options.now) / 86400 } }
      let root = (try? Publisher.currentRoot(of: stores[reference!.url]!, upTo: v.file.root_version))
      report.index = .init(
        version: v.index.version, published: v.index.published, expires: v.index.expires,
        days_left: left(v.index.expiryDate) ?? 0, root_version: v.file.root_version, root_expires: root?.payload.expires,
        root_days_left: left(root?.payload.expiryDate), revocation_version: v.revocation?.version,
        revocation_expires: v.revocation?.expires, revocation_days_left: left(v.revocation?.expiryDate),
        recipes: c.entries.count, golden_files: c.entries.reduce(0) { $0 + $1.golden.count }, objects: c.pinned.count)
      let checks: [(String, String, String?, Double?)] = [
        ("index-expiry", "the index (version \(v.index.version))", v.index.expires, report.index!.days_left),
        ("revocation-expiry", "the revocation list (version \(v.revocation?.version ?? 0))", v.revocation?.expires, report.index!.revocation_days_left),
        ("root-expiry", "root version \(v.file.root_version)", root?.payload.expires, report.index!.root_days_left),
      ]
      for (kind, what, expires, daysLeft) in checks {
        guard let expires, let daysLeft else { continue }
        if daysLeft <= 0 {
          report.failures.append(.init(kind: "expired", target: reference!.url, message: "\(what) expired at \(expires): clients refuse it"))
          report.alerts.append(.init(kind: kind, message: "\(what) expired at \(expires)"))
        } else if daysLeft <= Double(options.warnDays) {
          report.alerts.append(
            .init(kind: kind, message: "\(what) expires at \(expires), in \(String(format: "%.1f", daysLeft)) days (within \(options.warnDays)); re-sign it"))
        }
      }
    }

    /// The names the registry had `newDays` ago, from the index archive: the newest archived
    /// version published at least that long ago (or, if its blobs are gone, the oldest
    /// readable one after it). Every name when the archive cannot tell (nothing is new then);
    /// none when the whole archive is younger (everything is new).
    func newRecipeBaseline(_ c: IndexContents, store: any ObjectReader, others: [any ObjectReader], _ d: Deadline) -> Set<String>? {
      let all = Set(c.entries.map(\.name))
      guard options.newDays > 0 else { return all }
      let cutoff = options.now.addingTimeInterval(-Double(options.newDays) * 86400)
      if let p = Timestamp.parse(c.verified.index.published), p <= cutoff { return all }
      var found = [VerifiedIndex]()
      var v = c.version - 1
      var complete = false
      while v >= 1 && found.count < 1000 && !d.expired {
        guard let bytes = try? store.readDocument(.archivedIndex(v), maxSize: Limits.indexFile),
          let idx = try? IndexContents.verify(bytes, store: store, what: "index/\(v).index.json"),
          idx.index.version == v
        else { break }
        found.append(idx)
        if let p = Timestamp.parse(idx.index.published), p <= cutoff { break }
        v -= 1
        if v == 0 { complete = true }
      }
      for idx in found.reversed() {
        if let old = try? IndexContents.load(idx, from: others) { return Set(old.entries.map(\.name)) }
      }
      return complete || c.version == 1 ? [] : all
    }

    mutating func objects(_ d: Deadline) throws -> String? {
      guard let c = contents else { return nil }
      let pins = c.pinned.values.sorted(by: PinnedBlob.reportOrder)
      var parts = [String]()
      for url in urls where stores[url] != nil {
        let store = try open(url, d)
        setTarget(url) { $0.validated = true }
        var checked = 0
        // Batches of at most `batch` blobs and 16 MB: a pack is read alone.
        for range in pins.batchRanges(maxBytes: Validator.batchBytes, maxCount: Validator.batch, size: \.size) {
          try d.check("\(checked) of \(pins.count) objects checked on '\(url)'")
          let chunk = Array(pins[range])
          do {
            try check(chunk, on: store, url: url)
          } catch let e as TsukuError {
            report.failures.append(.init(kind: "unreachable", target: url, message: "'\(url)' failed while its objects were read: \(e.message)"))
            break
          }
          checked += chunk.count
        }
        parts.append("\(checked) objects on \(url == options.source ? "source" : "fallback")")
      }
      if stores[options.source] != nil { bucket(d) }
      return parts.joined(separator: ", ")
    }

    /// Checks one batch on one store: every blob present, verified and of the declared size.
    mutating func check(_ chunk: [PinnedBlob], on store: any ObjectReader, url: String) throws {
      var got = [ObjectID: Data]()
      var corrupt = [ObjectID: String]()
      do {
        got = try store.getMany(chunk.map { ($0.id, $0.size) })
      } catch let e as TsukuError where e.code == .integrity {
        // One bad blob spoils the batch: read them one by one to tell which.
        for p in chunk {
          do { got[p.id] = try store.get(p.id, maxSize: p.size) } catch let e as TsukuError {
            if e.code == .integrity { corrupt[p.id] = e.message } else if e.code != .notFound { throw e }
          }
        }
      }
      for p in chunk {
        var t = target(url)
        t.objects_checked += 1
        if let data = got[p.id] {
          t.bytes_checked += data.count
          if data.count != p.size {
            t.wrong_size += 1
            fail("wrong-size", p, url, "\(p.label) ('\(p.id.hex)') is \(data.count) bytes on '\(url)', the index declares \(p.size)")
          } else if p.role == .recipe {
            if recipePlatforms[p.id] == nil {
              recipePlatforms[p.id] = GoldenCoverage.supported(recipe: data, required: options.platforms)
            }
          }
        } else if let why = corrupt[p.id] {
          t.corrupt += 1
          fail("corrupt-object", p, url, "\(p.label): \(why)")
        } else {
          t.missing += 1
          fail("missing-object", p, url, "\(p.label) ('\(p.id.hex)') is missing from '\(url)'")
        }
        setTarget(url) { $0 = t }
      }
    }

    mutating func fail(_ kind: String, _ p: PinnedBlob, _ url: String, _ message: String) {
      report.failures.append(
        .init(kind: kind, target: url, recipe: p.recipe, object: p.id.hex, platforms: p.platform.map { [$0] }, message: message))
    }

    /// Bucket usage of the source, from its listing.
    mutating func bucket(_ d: Deadline) {
      var b = ValidationReport.Bucket(url: options.source, quota: options.quota)
      do {
        let s = try StoreURL.open(options.source, environment: environment(d))  // listing: the whole store
        let live = try s.inventory(.live, dated: false)
        let quarantined = try s.inventory(.quarantine, dated: false)
        b.quarantined_objects = quarantined.count
        b.quarantined_bytes = quarantined.reduce(0) { $0 + $1.size }
        b.objects = live.count + quarantined.count
        b.bytes = live.reduce(0) { $0 + $1.size } + b.quarantined_bytes!
        if let q = options.quota, q > 0 {
          let pct = Double(b.bytes!) / Double(q) * 100
          b.percent = (pct * 10).rounded() / 10
          if pct >= 80 {
            report.alerts.append(
              .init(
                kind: "quota",
                message: "the bucket holds \(ByteSize.describe(b.bytes!)), \(String(format: "%.1f", pct))% of the \(ByteSize.describe(q)) quota (alert at 80%); run 'tsuku registry gc'"))
          }
        }
      } catch let e as TsukuError {
        b.error = e.message
      } catch {
        b.error = "\(error)"
      }
      report.bucket = b
    }

    mutating func golden(_ d: Deadline) throws -> String? {
      var applied = [GoldenExclusion]()
      var used = Set<Int>()
      var checked = 0
      var missingCount = 0
      for (n, e) in entries.sorted(by: { $0.name < $1.name }).enumerated() {
        if n % 100 == 0 { try d.check("\(checked) of \(entries.count) recipes checked") }
        guard let platforms = recipePlatforms[e.recipe.sha256] else {
          unchecked.insert(e.name)
          continue
        }
        checked += 1
        var missing = [String]()
        for p in platforms where !GoldenCoverage.covers(e.golden, p) {
          if let x = options.exclusions.match(e.name, p) {
            if let i = options.exclusions.entries.firstIndex(of: x) { used.insert(i) }
            applied.append(GoldenExclusion(recipe: e.name, platform: p, reason: x.reason, issue: x.issue))
          } else {
            missing.append(p)
          }
        }
        if missing.isEmpty { continue }
        missingCount += 1
        if e.golden.isEmpty, let base = baseline, !base.contains(e.name) {
          report.new_recipes_without_golden.append(e.name)
        } else {
          report.failures.append(
            .init(
              kind: e.golden.isEmpty ? "no-golden" : "missing-golden", recipe: e.name, platforms: missing,
              message: e.golden.isEmpty
                ? "'\(e.name)' has no golden files (needs \(missing.joined(separator: ", ")))"
                : "'\(e.name)' has no golden file for \(missing.joined(separator: ", "))"))
        }
      }
      report.exclusions_applied = applied
      report.stale_exclusions = options.exclusions.entries.enumerated().filter { !used.contains($0.0) }.map(\.1)
      return "\(checked) recipes, \(missingCount) lacking golden files (\(report.new_recipes_without_golden.count) new), \(applied.count) excluded"
    }

    // MARK: targets

    func target(_ url: String) -> ValidationReport.Target {
      url == options.source ? report.source : report.fallback!
    }

    mutating func setTarget(_ url: String, _ change: (inout ValidationReport.Target) -> Void) {
      if url == options.source { change(&report.source) } else if report.fallback != nil { change(&report.fallback!) }
    }
  }
}
