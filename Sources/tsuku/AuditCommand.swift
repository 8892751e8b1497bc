import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku {
  struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Read the audit log, or answer whether this home received or served a blob.",
      discussion: """
        Without --hash or --name: the events, oldest first (receive, fetch, cache_hit, verify_failure, revoked, \
        trust_change). With --hash (or --name: every hash recorded under that name, also after the registry \
        changed it): whether this home received the blob (by a sync, packs included, or fetched for a read) and \
        served it (show, plan), when, from which source, under which index version.

        Exit 0 when seen, 3 when never (in the history kept: 'history since' says how far back it reaches), 64 \
        for a malformed hash.

        EXAMPLES:
          tsuku audit --since 24h
          tsuku audit --hash "$H"            # received? served? exit 0 or 3
          tsuku audit --name fzf --json      # every hash fzf ever had here
          for h in $(cat hosts); do
            ssh "$h" tsuku audit --hash "$H" --json > "$h.json"; echo "$h $?"
          done
        """)
    @Option(help: "Only events since T: an ISO time (2026-11-29T10:00:00Z) or an age (90m, 24h, 7d).") var since: String?
    @Option(help: "Answer for this blob: received? served? (64 hex digits).") var hash: String?
    @Option(help: "Answer for every hash recorded under this recipe name (its golden files too).", completion: RecipeNames.completion) var name: String?
    @Flag(help: "Print JSON (events: one per line; --hash/--name: one object).") var json = false

    func validate() throws {
      if hash != nil && name != nil { throw ValidationError("give --hash or --name, not both") }
    }

    func run() throws {
      let now = Date()
      var from: Date?
      if let since {
        from = Timestamp.parse(since) ?? Duration.parse(since).map { now.addingTimeInterval(-$0) }
        if from == nil { throw TsukuError(.usage, "invalid --since '\(since)': expected an ISO time or an age like 24h") }
      }
      let id = try hash.map { h in
        guard let id = ObjectID(hex: h.lowercased()) else {
          throw TsukuError(.usage, "invalid --hash '\(h.prefix(80))': expected a SHA-256 of 64 hex digits")
        }
        return id
      }
      let log = AuditLog(home: Home.fromEnvironment())
      if id != nil || name != nil {
        let report = log.report(sha256: id, name: name, since: from)
        if json { Output.json(report) } else { AuditText.print(report) }
        if !report.seen { throw ExitCode(3) }
        return
      }
      let events = log.read(since: from)
      if json {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for ev in events { Output.data((try e.encode(ev)) + Data("\n".utf8)) }
        return
      }
      for ev in events { Output.line(AuditText.line(ev)) }
    }
  }
}

/// The text forms of `tsuku audit`: one aligned line per event; a block per blob asked about.
enum AuditText {
  /// The widest event name, so that what follows it lines up.
  static let eventWidth = "verify_failure".count

  static func line(_ ev: AuditEvent) -> String {
    var parts = [ev.time, ev.event.padding(toLength: max(eventWidth, ev.event.count), withPad: " ", startingAt: 0)]
    if let n = ev.name { parts.append("'\(n)'") }
    if let h = ev.sha256 { parts.append(String(h.prefix(16))) }
    if let c = ev.count { parts.append("\(c) blob\(c == 1 ? "" : "s")") }
    if let a = ev.age_seconds { parts.append("age \(a)s") }
    if let s = ev.source { parts.append("from \(s)") }
    if let v = ev.index_version { parts.append("index v\(v)") }
    if let c = ev.source_commit { parts.append("commit \(c.prefix(12))") }
    if let d = ev.detail { parts.append("- \(d)") }
    return parts.joined(separator: " ")
  }

  static func print(_ r: AuditReport) {
    let since = r.history_since.map { "history since \($0)" } ?? "no audit history"
    if r.blobs.isEmpty, let n = r.name {
      return Output.line("'\(n)': no blob recorded under this name; never received or served (\(since))")
    }
    for b in r.blobs {
      var head = "sha256 \(b.sha256)"
      if let k = b.kind { head += "  \(k)" }
      if !b.names.isEmpty { head += "  " + b.names.map { "'\($0)'" }.joined(separator: ", ") }
      Output.line(head)
      if !b.seen {
        Output.line("  never received or served")
        continue
      }
      func row(_ label: String, _ text: String) { Output.line("  " + label.padding(toLength: 10, withPad: " ", startingAt: 0) + text) }
      if b.receipts.isEmpty { row("received", "no") }
      for (i, x) in b.receipts.enumerated() {
        var t = "\(i == 0 ? "yes" : "   ")  \(x.time)  \(x.via.padding(toLength: 4, withPad: " ", startingAt: 0))"
        t += x.index_version.map { "  index v\($0)" } ?? "  index -"
        if let s = x.source { t += "  from \(s)" }
        if let c = x.source_commit { t += "  commit \(c.prefix(12))" }
        row(i == 0 ? "received" : "", t)
      }
      if b.receipt_count > b.receipts.count { row("", "     ... \(b.receipt_count - b.receipts.count) more") }
      if let first = b.first_served, let last = b.last_served {
        func at(_ s: AuditAnswer.Serve) -> String { "\(s.time) (\(s.index_version.map { "index v\($0)" } ?? "index -"), \(s.via))" }
        row("served", "yes  \(b.served_count) time\(b.served_count == 1 ? "" : "s"), first \(at(first)), last \(at(last))")
      } else {
        row("served", "no")
      }
      for x in b.refusals {
        row(x.event == "revoked" ? "revoked" : "refused", "     \(x.time)\(x.source.map { "  from \($0)" } ?? "")\(x.detail.map { "  - \($0)" } ?? "")")
      }
    }
    Output.line("(\(since))")
  }
}
