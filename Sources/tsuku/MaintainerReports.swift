import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct DriftCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "drift",
      abstract: "Check that test recipes still have their production recipe's steps.",
      discussion: """
        Every .toml file under --testdata whose [metadata] says \
        source_recipe = "recipes/x/name.toml" is compared with that production recipe under \
        --recipes (the leading 'recipes/' is the --recipes folder itself). The [[steps]] are \
        compared as parsed TOML, field by field: actions and every parameter, 'when' included; \
        layout, comments and key order do not count, nor do [metadata], [version] or [verify]. \
        Each difference is reported with its path (steps[2].action), the test recipe's value \
        (old) and the production recipe's (new). A source recipe that does not exist, or a file \
        that is not valid TOML, is a finding with its reason. Files without source_recipe are \
        counted and not checked.

        Exit 0: no drift; 2: drift or findings; 64: a folder is missing.
        """)
    @Option(help: "The production recipes folder (<letter>/<name>.toml).") var recipes: String
    @Option(help: "The folder of test recipes, searched recursively.") var testdata: String
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
      let report = try Sync.Drift.check(recipes: recipes, testdata: testdata)
      if json {
        Output.json(DriftJSON(report))
      } else {
        for r in report.results {
          let head = "\(r.status.rawValue): \(r.testRecipe)" + (r.sourceRecipe.isEmpty ? "" : " -> \(r.sourceRecipe)")
          Output.line(head + (r.reason.map { ": \($0)" } ?? ""))
          for d in r.differences {
            Output.line("  \(d.path): \(d.old?.inlineTOML ?? "(absent)") -> \(d.new?.inlineTOML ?? "(absent)")")
          }
        }
        var summary =
          "\(report.results.count) linked test recipe\(report.results.count == 1 ? "" : "s"): \(report.count(.ok)) in step, \(report.count(.drift)) drifted, \(report.count(.missing)) missing, \(report.count(.invalid)) invalid; \(report.unlinked.count) without source_recipe"
        if !report.unreadable.isEmpty { summary += "; \(report.unreadable.count) not valid TOML (skipped)" }
        Output.line(summary)
      }
      if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
  }

  struct SizeReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "size-report",
      abstract: "Bytes of the binary, of the critical set built into it, and the largest recipes and golden files.",
      discussion: """
        The binary is the running tsuku executable; the built-in set is the critical recipes \
        and golden files compiled into it (decoded bytes, and bytes as stored in the binary). \
        Recipes and golden files are measured, without fetching them, from one of:
          (default)      this home's synced index, as 'tsuku list' reads it
                         (--offline: cache only)
          --source URL   the signed index a source serves, verified (--root, else
                         this home's trusted root, else the built-in one); only
                         the index is read
          --recipes DIR  folders laid out as 'registry publish' reads them, with
                         --critical and --golden (the files' own sizes; every
                         file is validated first)
        """)
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "How many of the largest to list (1 to 10000).") var top = 10
    @Option(help: "Measure the index this source serves.") var source: String?
    @Option(help: "The trusted root to verify --source with.") var root: String?
    @Option(help: "Measure a folder of community recipes.") var recipes: String?
    @Option(help: "With --recipes: a folder of critical recipes.") var critical: String?
    @Option(help: "With --recipes: a folder of golden files.") var golden: String?
    @OptionGroup var options: ClientOptions

    func validate() throws {
      if !(1...10000).contains(top) { throw ValidationError("invalid --top '\(top)': expected 1 to 10000") }
      let folders = recipes != nil || critical != nil || golden != nil
      if source != nil && folders { throw ValidationError("give --source or --recipes/--critical/--golden, not both") }
      if folders && recipes == nil && critical == nil { throw ValidationError("--golden needs --recipes and/or --critical") }
      if root != nil && source == nil { throw ValidationError("--root goes with --source") }
    }

    func run() throws {
      let binary = Self.executablePath()
      let report: Sync.SizeReport
      if let source {
        let anchor = try root.map(TrustedRoot.read) ?? Home.fromEnvironment().loadTrust()?.0 ?? DefaultRegistry.root()
        let (version, entries) = try Sync.SizeReport.sourceEntries(source, root: anchor, now: Date())
        report = .build(entries: entries, top: top, measured: "source", location: source, indexVersion: version, binaryPath: binary)
      } else if recipes != nil || critical != nil {
        let scan = try Publisher.scan(PublishInput(recipes: recipes, critical: critical, golden: golden))
        let where_ = [recipes, critical, golden].compactMap { $0 }.joined(separator: ", ")
        report = .build(entries: scan.entries, top: top, measured: "folders", location: where_, indexVersion: nil, binaryPath: binary)
      } else {
        let client = try options.client()
        let entries = try client.entries()
        report = .build(
          entries: entries, top: top, measured: "cache", location: client.home.cacheDir,
          indexVersion: try client.loadIndex().version, binaryPath: binary)
      }
      if json { return Output.json(report) }
      Self.printTable(report)
    }

    /// The running executable: /proc/self/exe on Linux, else what the process was started as.
    static func executablePath() -> String? {
      if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
      return Bundle.main.executablePath
    }

    static func printTable(_ r: Sync.SizeReport) {
      func n(_ v: Int) -> String {
        let s = String(v)
        var out = ""
        for (i, c) in s.reversed().enumerated() {
          if i > 0 && i % 3 == 0 { out.append(",") }
          out.append(c)
        }
        return String(out.reversed())
      }
      Output.line("binary:    \(r.binary.bytes.map { n($0) + " bytes" } ?? "size unknown")  \(r.binary.path ?? "")")
      let e = r.embedded
      Output.line(
        "built in:  \(n(e.bytes)) bytes (\(e.recipes) critical recipes, \(e.golden_files) golden files); \(n(e.stored_bytes)) bytes as stored\(e.percent_of_binary.map { ", \($0)% of the binary" } ?? "")")
      let from = r.measured == "cache" ? "the synced cache" : r.measured == "source" ? "source" : "folders"
      Output.line("measured:  \(from) \(r.location)\(r.index_version.map { " (index version \($0))" } ?? "")")
      Output.line(
        "recipes:   \(r.recipes.count), \(n(r.recipes.bytes)) bytes, median \(n(r.recipes.median_bytes)); golden files: \(r.golden.count), \(n(r.golden.bytes)) bytes, median \(n(r.golden.median_bytes))")
      Output.line("")
      Output.line("largest built-in critical recipes (recipe + golden files):")
      table([["bytes", "recipe", "golden", "files", "name"]] + e.largest.map { [n($0.bytes), n($0.recipe_bytes), n($0.golden_bytes), String($0.golden_files), $0.name] }, right: 4)
      Output.line("")
      Output.line("largest recipes:")
      table([["bytes", "category", "name"]] + r.recipes.largest.map { [n($0.bytes), $0.category, $0.name] }, right: 1)
      Output.line("")
      Output.line("largest golden files:")
      table(
        [["bytes", "category", "name", "version", "platform"]]
          + r.golden.largest.map { [n($0.bytes), $0.category, $0.name, $0.version ?? "", $0.platform ?? ""] }, right: 1)
    }

    /// Prints rows in columns: the first `right` columns right-aligned, the rest left-aligned.
    static func table(_ rows: [[String]], right: Int) {
      guard let width = rows.first?.count else { return }
      let w = (0..<width).map { c in rows.map { $0[c].count }.max() ?? 0 }
      for row in rows {
        var cells = [String]()
        for (c, cell) in row.enumerated() {
          let pad = String(repeating: " ", count: w[c] - cell.count)
          cells.append(c < right ? pad + cell : (c == width - 1 ? cell : cell + pad))
        }
        Output.line("  " + cells.joined(separator: "  "))
      }
    }
  }
}

/// The JSON shape of `registry drift --json`.
struct DriftJSON: Encodable {
  struct Difference: Encodable {
    var path: String
    var change: String
    var old: TOMLJSON?
    var new: TOMLJSON?

    func encode(to encoder: any Encoder) throws {
      var c = encoder.container(keyedBy: CodingKeys.self)
      try c.encode(path, forKey: .path)
      try c.encode(change, forKey: .change)
      try c.encode(old, forKey: .old)  // null when the test recipe lacks it
      try c.encode(new, forKey: .new)  // null when the production recipe lacks it
    }
    enum CodingKeys: String, CodingKey { case path, change, old, new }
  }
  struct Result: Encodable {
    var test_recipe: String
    var source_recipe: String
    var production: String?
    var status: String
    var reason: String?
    var differences: [Difference]
  }
  var status: String
  var checked: Int
  var ok: Int
  var drifted: Int
  var missing: Int
  var invalid: Int
  var results: [Result]
  var unlinked: [String]
  var unreadable: [String]

  init(_ r: DriftReport) {
    status = r.exitCode == 0 ? "ok" : "drift"
    checked = r.results.count
    ok = r.count(.ok)
    drifted = r.count(.drift)
    missing = r.count(.missing)
    invalid = r.count(.invalid)
    results = r.results.map {
      Result(
        test_recipe: $0.testRecipe, source_recipe: $0.sourceRecipe, production: $0.production, status: $0.status.rawValue,
        reason: $0.reason,
        differences: $0.differences.map { Difference(path: $0.path, change: $0.change, old: $0.old.map(TOMLJSON.init), new: $0.new.map(TOMLJSON.init)) })
    }
    unlinked = r.unlinked
    unreadable = r.unreadable
  }
}
