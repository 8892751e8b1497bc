import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku {
  struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check the home, config, trusted root, sources, cache and revocations; say what to fix.",
      discussion: """
        Shows in one place the home ($TSUKU_HOME) and whether it is writable, the config file, \
        the trusted root and the days left before it expires, the sources and whether each \
        answers with an index that verifies, the cache's size and limit, and when the \
        revocations were last checked. Each problem comes with one line saying what to do.

        Nothing is written. Each source is asked for its index.json once, all at the same \
        time, each within --timeout seconds (at most TSUKU_API_TIMEOUT), so a source that \
        never answers costs that long and no more.

        Exit 0 when nothing needs fixing, 2 otherwise.
        """)
    @Option(help: "Seconds each source may take to answer (1 to 60).") var timeout: Double = 3
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
      if !(timeout >= 1 && timeout <= 60) {
        throw ValidationError("invalid --timeout '\(timeout)': expected seconds from 1 to 60")
      }
    }

    func run() throws {
      let r = Sync.Doctor.check(now: Date(), probeTimeout: timeout)
      if json {
        Output.json(r)
      } else {
        for l in Self.lines(r) { Output.line(l) }
      }
      if !r.healthy { throw ExitCode(TsukuError.Code.findings.exitCode) }
    }

    /// The report as aligned lines: one per check, one per source, then the problems.
    static func lines(_ r: DoctorReport) -> [String] {
      var rows = [(String, String)]()
      rows.append(("home", "\(r.home.path) (\(r.home.exists ? (r.home.writable ? "writable" : "not writable") : "not created yet"))"))
      let c = r.config
      rows.append(
        ("config", c.error.map { "\(c.path): \($0)" } ?? (c.present ? "\(c.path) (sources: \(c.sources ?? "-"))" : "\(c.path) (none)")))
      if let v = r.root.version {
        var s = "version \(v) (\(r.root.origin))"
        if let e = r.root.expires, let d = r.root.days_left { s += ", expires \(e) (\(d < 0 ? "expired" : "\(d) days left"))" }
        rows.append(("trusted root", s))
      } else {
        rows.append(("trusted root", r.root.error ?? "-"))
      }
      let limit = Int(r.sources.probe_timeout) == Int(r.sources.probe_timeout.rounded(.up))
        ? "\(Int(r.sources.probe_timeout)) s" : String(format: "%.1f s", r.sources.probe_timeout)
      rows.append(("sources", "\(r.sources.list.isEmpty ? "-" : r.sources.list) (from \(r.sources.from); each probed within \(limit))"))
      for s in r.sources.sources {
        var line = "\(s.status): \(s.url)"
        if let v = s.index_version { line += ", index version \(v)" }
        if let ms = s.latency_ms { line += ", \(ms) ms" }
        if s.status != "healthy", let e = s.error { line += " (\(e))" }
        rows.append(("", "  " + line))
      }
      if let k = r.cache {
        var s = "\(ByteSize.describe(k.bytes)) of \(ByteSize.describe(k.limit)) (\(k.percent_full)%) in \(k.path)"
        if let v = k.index_version { s += "; index version \(v)" + (k.index_expires.map { " (expires \($0))" } ?? "") }
        rows.append(("cache", s))
      }
      if let v = r.revocations {
        var s = v.list_version.map { "list version \($0)" + (v.list_expires.map { " (expires \($0))" } ?? "") } ?? "no list"
        if let age = v.age_seconds {
          s += "; checked \(Duration.describe(TimeInterval(age))) ago (\(v.fresh ? "fresh" : "due"): TTL \(Duration.describe(TimeInterval(v.ttl_seconds))))"
        } else {
          s += "; never checked"
        }
        rows.append(("revocations", s))
      }
      let width = rows.map(\.0.count).max() ?? 0
      var out = rows.map { $0.0.isEmpty ? String(repeating: " ", count: width + 2) + $0.1 : $0.0.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.1 }
      out.append("")
      if r.problems.isEmpty {
        out.append("no problems found")
      } else {
        out.append("\(r.problems.count) problem\(r.problems.count == 1 ? "" : "s"):")
        for p in r.problems {
          out.append("  \(p.area): \(p.problem)")
          out.append("    fix: \(p.fix)")
        }
      }
      return out
    }
  }
}
