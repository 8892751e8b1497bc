import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Nightly validation: health, the index, every object it pins, golden file coverage; a dashboard.",
      discussion: """
        Checks the source's health first (bounded by --timeout-health). If the source is \
        unreachable, the --fallback (for example the git history, git+file://...) is validated \
        instead and the run is 'degraded'; without a reachable fallback the run is 'skipped' \
        with the reason. Otherwise every object the index pins (tree, shards, packs, revocation \
        list, recipes, golden files) is read from each reachable target and checked against its \
        hash and size, and every recipe must have golden files for the platforms it supports, \
        unless --exclusions lists it. Recipes newer than --new-days are reported, not failed.

        Writes --status-md (Markdown dashboard) and, when something needs a person (failures, \
        degraded, skipped, alerts), --issue-md (first line the title, then the body); a \
        previous --issue-md is removed when nothing does. Alerts: the index, the revocation \
        list or the root expires within --warn-days; the bucket passes 80% of --quota.

        Exit 0 passed, 2 failures found (also degraded), 5 could not validate (skipped).
        """)
    @Option(help: "The store to validate (the bucket).") var source: String
    @Option(help: "Validated too; validated instead when the source is unreachable (a degraded run).") var fallback: String?
    @Option(help: "The trusted root to verify with (default: this home's, or the built-in one).") var root: String?
    @Option(help: "A JSON exclusions file: recipes (and platforms) allowed to lack golden files, each with a reason.")
    var exclusions: String?
    @Option(name: .customLong("status-md"), help: "Write the Markdown status dashboard to FILE.") var statusMD: String?
    @Option(name: .customLong("issue-md"), help: "Write the issue to open to FILE (title line, blank line, body).") var issueMD: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "The bucket's quota (e.g. 10GB): alert past 80%.") var quota: String?
    @Option(help: "Alert when the index, revocation list or root expires within N days.") var warnDays = 7
    @Option(
      name: .customLong("credentials-expire"), parsing: .singleValue,
      help: "NAME=YYYY-MM-DD: static credentials (a read-only bucket key) due for rotation then; alert within --warn-days. Repeatable.")
    var credentialsExpire: [String] = []
    @Option(help: "A recipe the registry did not have N days ago is new: missing golden files are reported, not failed (0: none is new).")
    var newDays = 7
    @Option(name: .customLong("platform"), parsing: .upToNextOption, help: "A platform recipes need golden files for; repeatable (default linux-amd64 darwin-amd64 darwin-arm64).")
    var platforms: [String] = []
    @Option(help: "Seconds for the health stage.") var timeoutHealth: Double = 10
    @Option(help: "Seconds for the index stage.") var timeoutIndex: Double = 60
    @Option(help: "Seconds for the objects stage.") var timeoutObjects: Double = 900
    @Option(help: "Seconds for the golden stage.") var timeoutGolden: Double = 120
    @Option(help: ArgumentHelp("The time to validate at (YYYY-MM-DDTHH:MM:SSZ), for tests.", visibility: .hidden))
    var now: String?

    func validate() throws {
      if let quota, ByteSize.parse(quota) == nil {
        throw ValidationError("invalid --quota '\(quota)': expected bytes, e.g. 10GB or 500MB")
      }
      if !(0...3650).contains(warnDays) { throw ValidationError("invalid --warn-days '\(warnDays)': expected 0 to 3650") }
      if !(0...3650).contains(newDays) { throw ValidationError("invalid --new-days '\(newDays)': expected 0 to 3650") }
      for p in platforms where !GoldenCoverage.isPlatform(p) {
        throw ValidationError("invalid --platform '\(p)': expected os-arch or os-family-arch, e.g. linux-amd64")
      }
      for (name, t) in [("health", timeoutHealth), ("index", timeoutIndex), ("objects", timeoutObjects), ("golden", timeoutGolden)]
      where !(t > 0 && t <= 86400) {
        throw ValidationError("invalid --timeout-\(name) '\(t)': expected seconds, more than 0 and at most 86400")
      }
      if let now, Timestamp.parse(now) == nil { throw ValidationError("invalid --now '\(now)': expected YYYY-MM-DDTHH:MM:SSZ") }
    }

    /// `NAME=YYYY-MM-DD` (or a full UTC time) from `--credentials-expire`.
    static func credentialExpiry(_ text: String) throws -> (name: String, expires: Date) {
      let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
      let date = parts.count == 2 ? (Timestamp.parse(parts[1]) ?? Timestamp.parse(parts[1] + "T00:00:00Z")) : nil
      guard parts.count == 2, !parts[0].isEmpty, let date else {
        throw ValidationError("invalid --credentials-expire '\(text)': expected NAME=YYYY-MM-DD")
      }
      return (parts[0], date)
    }

    func run() throws {
      let anchor = try root.map(TrustedRoot.read) ?? Home.fromEnvironment().loadTrust()?.0 ?? DefaultRegistry.root()
      var o = ValidateOptions(source: source, fallback: fallback, root: anchor, now: now.flatMap(Timestamp.parse) ?? Date())
      _ = try StoreURL.openReader(source, environment: [:])  // a malformed URL is exit 64 up front
      if let fallback { _ = try StoreURL.openReader(fallback, environment: [:]) }
      if let exclusions { o.exclusions = try GoldenExclusions.read(exclusions) }
      o.quota = quota.flatMap(ByteSize.parse)
      o.warnDays = warnDays
      o.credentialExpiries = try credentialsExpire.map(Self.credentialExpiry)
      o.newDays = newDays
      if !platforms.isEmpty { o.platforms = platforms }
      o.timeouts.health = timeoutHealth
      o.timeouts.index = timeoutIndex
      o.timeouts.objects = timeoutObjects
      o.timeouts.golden = timeoutGolden
      let r = Validator.run(o)
      if let statusMD { try writeFileAtomically(Data(r.markdown.utf8), to: statusMD) }
      if let issueMD {
        if let issue = r.issue {
          try writeFileAtomically(Data((issue.title + "\n\n" + issue.body).utf8), to: issueMD)
        } else if FileManager.default.fileExists(atPath: issueMD) {
          try FileManager.default.removeItem(atPath: issueMD)
        }
      }
      if json {
        Output.json(r)
      } else {
        Output.line(summary(r))
      }
      if r.exit_code != 0 { throw ExitCode(r.exit_code) }
    }

    /// A few lines for a terminal or a CI log.
    func summary(_ r: ValidationReport) -> String {
      var lines = ["\(r.status): \(r.source.url)" + (r.reason.map { " — \($0)" } ?? "")]
      lines.append("recipes: \(r.recipes.passed) passed, \(r.recipes.failed) failed, \(r.recipes.unchecked) not checked (of \(r.recipes.total)); failures: \(r.failures.count)")
      if !r.failures.isEmpty {
        var kinds = [String: Int]()
        for f in r.failures { kinds[f.kind, default: 0] += 1 }
        lines.append("failures by kind: " + kinds.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
      }
      if let i = r.index { lines.append("index version \(i.version), expires \(i.expires) (\(String(format: "%.1f", i.days_left)) days)") }
      for s in r.stages { lines.append("stage \(s.name): \(s.status) in \(String(format: "%.1f", s.seconds)) s\(s.detail.map { " (\($0))" } ?? "")") }
      for a in r.alerts { lines.append("alert \(a.kind): \(a.message)") }
      for f in r.failures.prefix(20) { lines.append("failure \(f.kind): \(f.message)") }
      if r.failures.count > 20 { lines.append("… and \(r.failures.count - 20) more failures (--json or --status-md for all)") }
      if !r.new_recipes_without_golden.isEmpty {
        lines.append("new recipes without golden files: \(r.new_recipes_without_golden.count)")
      }
      return lines.joined(separator: "\n")
    }
  }

  struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "gc",
      abstract: "Retention: quarantine, then delete, the blobs no kept index version pins.",
      discussion: """
        Keeps every blob that index.json or the archive copies of the K-1 index versions before \
        it pin (tree, shards, packs, revocation lists, recipes, golden files). Other blobs at \
        least --min-age old are moved into the quarantine (quarantine/sha256/...); a later run \
        deletes those quarantined at least --min-age before, and moves back any that a kept \
        index pins again. A git store gets one commit per step (history keeps everything). \
        With several --to, each store is collected in turn and reported on its own (--json: \
        one report per store, in an array).
        """)
    @Option(
      name: .customLong("to"), parsing: .singleValue,
      help: "A store URL (directory, git+file:// or s3://); repeat --to for every store of the registry.")
    var targets: [String] = []
    @Option(help: "How many index versions keep their blobs (the current one included).") var keepIndexVersions = 3
    @Option(help: "Quarantine blobs older than this, delete quarantined ones older than this (e.g. 7d, 36h).")
    var minAge = "7d"
    @Flag(help: "Report what would be quarantined, restored and deleted; change nothing.") var dryRun = false
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: ArgumentHelp("The time to collect at (YYYY-MM-DDTHH:MM:SSZ), for tests.", visibility: .hidden))
    var now: String?

    func validate() throws {
      if !(1...1000).contains(keepIndexVersions) {
        throw ValidationError("invalid --keep-index-versions '\(keepIndexVersions)': expected 1 to 1000")
      }
      guard let last = minAge.last, last.isLetter, Sync.Duration.parse(minAge) != nil else {
        throw ValidationError("invalid --min-age '\(minAge)': expected a duration with a unit, e.g. 7d or 36h")
      }
      if let now, Timestamp.parse(now) == nil { throw ValidationError("invalid --now '\(now)': expected YYYY-MM-DDTHH:MM:SSZ") }
      if targets.isEmpty { throw ValidationError("--to is required") }
    }

    func run() throws {
      var seen = Set<String>()
      let urls = targets.filter { seen.insert($0).inserted }
      let stores = try urls.map { try StoreURL.open($0) }
      var reports = [GCReport]()
      for (url, store) in zip(urls, stores) {
        let r = try Retention.collect(
          store,
          options: GCOptions(
            keepIndexVersions: keepIndexVersions, minAge: Sync.Duration.parse(minAge)!, dryRun: dryRun,
            now: now.flatMap(Timestamp.parse) ?? Date()))
        reports.append(r)
        if !json { report(r, url: urls.count > 1 ? url : nil) }
      }
      if json { urls.count == 1 ? Output.json(reports[0]) : Output.json(reports) }
    }

    /// The report of one store (prefixed with its URL when there are several).
    func report(_ r: GCReport, url: String?) {
      for w in r.warnings { Output.warn(w) }
      let verb = dryRun ? "would " : ""
      Output.line(
        (url.map { "\($0): " } ?? "") + "\(dryRun ? "dry run: " : "")kept index versions \(r.kept_versions.map(String.init).joined(separator: ", ")) (\(r.referenced) blobs); \(verb)quarantine \(r.quarantined.objects) blobs (\(ByteSize.describe(r.quarantined.bytes))), \(verb)delete \(r.deleted.objects) quarantined (\(ByteSize.describe(r.deleted.bytes)) freed), \(verb)restore \(r.restored.objects); \(r.young.objects) unreferenced but younger than \(minAge); \(r.quarantine_after.objects) in the quarantine (\(ByteSize.describe(r.quarantine_after.bytes)))")
    }
  }
}
