import Foundation
import Store

/// What `tsuku registry validate` found: the JSON it prints, the source of the Markdown
/// dashboard and of the issue text. Field names are the JSON keys (docs/cli.md).
public struct ValidationReport: Codable, Sendable {
  /// `passed` (0), `failed` (2: failures found), `degraded` (2: the source was unreachable and
  /// the fallback was validated instead), `skipped` (5: nothing could be validated).
  public var status = "passed"
  public var exit_code: Int32 = 0
  /// Why the run is degraded or skipped; nil otherwise.
  public var reason: String?
  public var run_at: String
  public var source: Target
  public var fallback: Target?
  public var index: IndexSummary?
  public var stages: [Stage] = []
  public var recipes = RecipeCounts()
  public var failures: [Failure] = []
  public var new_recipes_without_golden: [String] = []
  public var exclusions_applied: [GoldenExclusion] = []
  /// Exclusions that excused nothing: no such recipe, the golden file exists, or the recipe
  /// does not support that platform.
  public var stale_exclusions: [GoldenExclusion] = []
  public var bucket: Bucket?
  public var alerts: [Alert] = []
  public var notes: [String] = []
  /// The issue to open when something needs a person: failures, degraded, skipped or alerts.
  public var issue: Issue?

  /// A store validated (or that could not be).
  public struct Target: Codable, Sendable {
    public var url: String
    /// `source` or `fallback`.
    public var role: String
    public var health: HealthReport?
    /// Whether the objects of the index were checked on it.
    public var validated = false
    public var index_version: Int?
    public var objects_checked = 0
    public var missing = 0
    public var corrupt = 0
    public var wrong_size = 0
    public var bytes_checked = 0
  }

  /// The index validated (the newest that verified among the targets).
  public struct IndexSummary: Codable, Sendable {
    public var version: Int
    public var published: String
    public var expires: String
    public var days_left: Double
    public var root_version: Int
    public var root_expires: String?
    public var root_days_left: Double?
    public var revocation_version: Int?
    public var revocation_expires: String?
    public var revocation_days_left: Double?
    public var recipes: Int
    public var golden_files: Int
    public var objects: Int
  }

  /// One stage: `health`, `index`, `objects`, `golden`.
  public struct Stage: Codable, Sendable {
    public var name: String
    /// `ok`, `failed` (it found failures), `timed_out`, `skipped`.
    public var status: String
    public var seconds: Double
    public var timeout_seconds: Double
    public var detail: String?
  }

  public struct RecipeCounts: Codable, Sendable {
    public var total = 0
    public var passed = 0
    public var failed = 0
    /// Recipes not checked (their stage timed out, or their recipe blob could not be read).
    public var unchecked = 0
    /// The same counts for the `critical` and the `community` recipes.
    public var critical: Split?
    public var community: Split?
  }

  public struct Split: Codable, Sendable {
    public var total = 0
    public var passed = 0
    public var failed = 0
    public var unchecked = 0
  }

  /// One failure. `kind`: `unreachable`, `index-missing`, `index-invalid`, `index-mismatch`,
  /// `expired`, `missing-object`, `corrupt-object`, `wrong-size`, `missing-golden`,
  /// `no-golden`, `timeout`.
  public struct Failure: Codable, Sendable, Equatable {
    public var kind: String
    public var target: String?
    public var recipe: String?
    public var object: String?
    public var platforms: [String]?
    public var message: String
  }

  /// Bucket usage of the source (all blobs, live and quarantined) against `--quota`.
  public struct Bucket: Codable, Sendable {
    public var url: String
    public var objects: Int?
    public var bytes: Int?
    public var quarantined_objects: Int?
    public var quarantined_bytes: Int?
    public var quota: Int?
    public var percent: Double?
    public var error: String?
  }

  /// `index-expiry`, `revocation-expiry`, `root-expiry`, `quota`, `slow`.
  public struct Alert: Codable, Sendable, Equatable {
    public var kind: String
    public var message: String
  }

  public struct Issue: Codable, Sendable {
    public var title: String
    public var body: String
  }

  public init(runAt: Date, source: String, fallback: String?) {
    run_at = Timestamp.format(runAt)
    self.source = Target(url: source, role: "source")
    self.fallback = fallback.map { Target(url: $0, role: "fallback") }
  }

  var targets: [Target] { [source] + (fallback.map { [$0] } ?? []) }
}

extension ValidationReport {
  /// The status dashboard, Markdown.
  public var markdown: String {
    var md = "# Registry validation status\n\n"
    md += "| | |\n|---|---|\n"
    md += "| Last run | \(run_at) |\n"
    md += "| Status | **\(status.uppercased())**\(reason.map { " — \(cell($0))" } ?? "") |\n"
    md += "| Source | `\(source.url)` (\(reachability(source))) |\n"
    if let f = fallback { md += "| Fallback | `\(f.url)` (\(reachability(f))) |\n" }
    md += "| Recipes | \(recipes.passed) passed, \(recipes.failed) failed\(recipes.unchecked > 0 ? ", \(recipes.unchecked) not checked" : "") (of \(recipes.total)) |\n"
    for (name, split) in [("critical", recipes.critical), ("community", recipes.community)] {
      guard let split, split.total > 0 else { continue }
      md += "| … \(name) | \(split.passed) passed, \(split.failed) failed\(split.unchecked > 0 ? ", \(split.unchecked) not checked" : "") (of \(split.total)) |\n"
    }
    md += "| Failures | \(failures.count) |\n"
    if let i = index {
      md += "| Index | version \(i.version), published \(i.published), expires \(i.expires) (\(days(i.days_left))) |\n"
      if let v = i.revocation_version, let e = i.revocation_expires, let d = i.revocation_days_left {
        md += "| Revocation list | version \(v), expires \(e) (\(days(d))) |\n"
      } else {
        md += "| Revocation list | none |\n"
      }
      if let e = i.root_expires, let d = i.root_days_left { md += "| Root | version \(i.root_version), expires \(e) (\(days(d))) |\n" }
    }
    if let b = bucket {
      if let bytes = b.bytes {
        var cellText = "\(ByteSize.describe(bytes)) in \(b.objects ?? 0) objects"
        if let qb = b.quarantined_bytes, qb > 0 { cellText += " (\(ByteSize.describe(qb)) of them quarantined)" }
        if let q = b.quota, let p = b.percent { cellText += " of \(ByteSize.describe(q)) quota (\(String(format: "%.1f", p))%)" }
        md += "| Storage | \(cellText) |\n"
      } else {
        md += "| Storage | unknown: \(cell(b.error ?? "not listed")) |\n"
      }
    }
    md += "\n## Alerts\n\n"
    md += alerts.isEmpty ? "None.\n" : alerts.map { "- **\($0.kind)**: \($0.message)\n" }.joined()
    md += "\n## Stages\n\n| stage | status | time | timeout | detail |\n|---|---|---|---|---|\n"
    for s in stages {
      md += "| \(s.name) | \(s.status) | \(String(format: "%.1f", s.seconds)) s | \(String(format: "%.0f", s.timeout_seconds)) s | \(cell(s.detail ?? "")) |\n"
    }
    md += "\n## Targets\n\n| role | store | reachable | index | objects checked | missing | corrupt | wrong size |\n|---|---|---|---|---|---|---|---|\n"
    for t in targets {
      md += "| \(t.role) | `\(t.url)` | \(t.health?.reachable == true ? "yes" : "no") | \(t.index_version.map(String.init) ?? "–") | \(t.validated ? String(t.objects_checked) : "–") | \(t.missing) | \(t.corrupt) | \(t.wrong_size) |\n"
    }
    md += "\n## Failures (\(failures.count))\n\n"
    if failures.isEmpty {
      md += "None.\n"
    } else {
      md += "| kind | count |\n|---|---|\n" + failureKinds.map { "| \($0.0) | \($0.1) |\n" }.joined() + "\n"
      md += failureTable(limit: 100)
    }
    md += "\n## New recipes without golden files (\(new_recipes_without_golden.count))\n\n"
    md += new_recipes_without_golden.isEmpty ? "None.\n" : listing(new_recipes_without_golden, limit: 200)
    md += "\n## Exclusions applied (\(exclusions_applied.count))\n\n"
    if exclusions_applied.isEmpty {
      md += "None.\n"
    } else {
      md += "| recipe | platform | reason |\n|---|---|---|\n"
      for e in exclusions_applied.prefix(100) { md += "| \(e.recipe) | \(e.platform ?? "all") | \(cell(e.reason)) |\n" }
      if exclusions_applied.count > 100 { md += "\n… and \(exclusions_applied.count - 100) more (see the JSON).\n" }
    }
    if !stale_exclusions.isEmpty {
      md += "\nStale exclusions (no such recipe, the golden file exists, or the recipe does not support that platform): "
      md += stale_exclusions.map { "\($0.recipe)\($0.platform.map { " on \($0)" } ?? "")" }.joined(separator: ", ") + ".\n"
    }
    if !notes.isEmpty { md += "\n## Notes\n\n" + notes.map { "- \($0)\n" }.joined() }
    return md
  }

  /// How many failures of each kind, the most frequent first.
  var failureKinds: [(String, Int)] {
    var kinds = [String: Int]()
    for f in failures { kinds[f.kind, default: 0] += 1 }
    return kinds.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
  }

  /// The failures as a Markdown table, at most `limit` rows.
  func failureTable(limit: Int) -> String {
    var md = "| kind | recipe | target | detail |\n|---|---|---|---|\n"
    for f in failures.prefix(limit) {
      md += "| \(f.kind) | \(f.recipe ?? "") | \(f.target.map { role(of: $0) } ?? "") | \(cell(f.message)) |\n"
    }
    if failures.count > limit { md += "\n… and \(failures.count - limit) more (see the JSON).\n" }
    return md
  }

  /// Title and body of the issue to open, or nil when nothing needs a person.
  func makeIssue() -> Issue? {
    if status == "passed" && alerts.isEmpty { return nil }
    let title: String
    switch status {
    case "skipped": title = "Registry validation skipped: the source is unreachable and no fallback could be validated"
    case "degraded":
      title = "Registry validation degraded: the source is unreachable, validated from the fallback"
        + (failures.isEmpty ? "" : "; \(failures.count) failure\(failures.count == 1 ? "" : "s")")
    case "failed":
      title = "Registry validation failed: \(failures.count) failure\(failures.count == 1 ? "" : "s") (" + failureKinds.map { "\($0.1) \($0.0)" }.joined(separator: ", ") + ")"
    default: title = "Registry validation alerts: " + alerts.map(\.message).joined(separator: "; ")
    }
    var body = "The nightly registry validation of `\(source.url)` at \(run_at) ended **\(status)**"
    body += reason.map { ": \($0)." } ?? "."
    body += "\n\n- Recipes: \(recipes.passed) passed, \(recipes.failed) failed (of \(recipes.total))\n"
    if let i = index { body += "- Index version \(i.version), expires \(i.expires) (\(days(i.days_left)))\n" }
    for s in stages where s.status != "ok" { body += "- Stage `\(s.name)`: \(s.status)\(s.detail.map { " — \($0)" } ?? "")\n" }
    if !alerts.isEmpty { body += "\n## Alerts\n\n" + alerts.map { "- **\($0.kind)**: \($0.message)\n" }.joined() }
    if !failures.isEmpty { body += "\n## Failures (\(failures.count))\n\n" + failureTable(limit: 50) }
    if !new_recipes_without_golden.isEmpty {
      body += "\n## New recipes without golden files (\(new_recipes_without_golden.count))\n\n" + listing(new_recipes_without_golden, limit: 50)
    }
    body += "\nThe full report is the JSON output of `tsuku registry validate --json`; the runbook is in docs/operations.md (\"Nightly validation\").\n"
    return Issue(title: String(title.prefix(250)), body: body)
  }

  private func reachability(_ t: Target) -> String {
    guard let h = t.health else { return "not checked" }
    var s = h.status
    if let l = h.latency_ms { s += ", \(l) ms" }
    if let e = h.error, !h.reachable { s += ": " + cell(e) }
    return s
  }

  private func role(of url: String) -> String { url == source.url ? "source" : url == fallback?.url ? "fallback" : url }

  private func listing(_ names: [String], limit: Int) -> String {
    var s = names.prefix(limit).map { "`\($0)`" }.joined(separator: ", ")
    if names.count > limit { s += ", … and \(names.count - limit) more" }
    return s + "\n"
  }

  private func days(_ d: Double) -> String {
    if d < 0 { return "expired \(String(format: "%.1f", -d)) days ago" }
    return "\(String(format: "%.1f", d)) days left"
  }

  /// Text for a table cell: one line, pipes escaped.
  private func cell(_ s: String) -> String {
    s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
  }
}
