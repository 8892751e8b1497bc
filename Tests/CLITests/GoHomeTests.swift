import Foundation
import Store
import Sync
import Testing

import TestSupport

/// One `TSUKU_HOME` shared with the Go tsuku client: `init` edits `config.toml` in place (the Go
/// client's keys, tables and comments kept byte for byte), `cache clear` removes only this
/// program's files, and the audit log lives under a name the Go client does not use. The Go
/// client's view of `config.toml` is read with an independent TOML parser (Python's `tomllib`).
@Suite struct GoHomeTests {
  /// `config.toml` as the Go client writes it (BurntSushi/toml's encoder: top-level keys, then
  /// tables, sub-tables indented), with a user's comments and additions: an array of tables, a
  /// multi-line string and a multi-line array that mention `[recipe_store]`, a date-time.
  static let goConfig = """
    # tsuku configuration (edited by hand too)
    telemetry = false
    auto_install_mode = "confirm"
    strict_registries = true

    [llm]
      enabled = true
      local_enabled = false
      idle_timeout = "5m"
      providers = ["claude", "gemini"]
      daily_budget = 2.5
      hourly_rate_limit = 10

    [secrets]
      anthropic_api_key = "sk-ant-not-a-real-key"

    # recipe sources the Go client resolves on install
    [registries]
      [registries."acme/recipes"]
        url = "https://github.com/acme/recipes"
        auto_registered = true
      [registries."tsukumogami/extra"]
        url = "https://github.com/tsukumogami/extra"

    [updates]
      enabled = true
      auto_apply = false
      check_interval = "24h"
      notify_out_of_channel = true
      self_update = false

    [[profiles]]
    name = "work"
    note = '''
    [recipe_store]
    sources = "not a setting: text in a string"
    '''
    tools = [
      "fzf",   # a comment inside an array
      "ripgrep",
    ]

    [[profiles]]
    name = "home"
    since = 2026-01-02T03:04:05Z

    """

  /// The world: a published sample registry and a home initialised by this program.
  func world() throws -> CLIWorld {
    let w = try CLIWorld()
    try w.setUp()
    return w
  }

  func config(_ w: CLIWorld) -> String { w.dir.file("home/config.toml") }

  func write(_ text: String, _ path: String, mode: mode_t = 0o600) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode)
  }

  func read(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
  }

  func initAgain(_ w: CLIWorld, sources: [String]? = nil) throws -> CommandResult {
    var args = ["init", "--root", w.dir.file("store/root/1.root.json")]
    for s in sources ?? [w.store] { args += ["--source", s] }
    return try runTsuku(args, env: w.env, binary: w.bin)
  }

  /// The document as Python's tomllib reads it, as JSON (dates as strings), without the
  /// `recipe_store` table when `dropOwn`.
  func parsed(_ text: String, dropOwn: Bool = true) throws -> NSDictionary {
    let script = """
      import json, sys, tomllib
      d = tomllib.loads(sys.stdin.read())
      if sys.argv[1] == "1": d.pop("recipe_store", None)
      print(json.dumps(d, sort_keys=True, default=str))
      """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script, dropOwn ? "1" : "0"]
    let input = Pipe()
    let out = Pipe()
    p.standardInput = input
    p.standardOutput = out
    try p.run()
    try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    try input.fileHandleForWriting.close()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try #require(p.terminationStatus == 0, "tomllib refused the document:\n\(text)")
    return try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
  }

  /// The document as the Go client's TOML decoder (BurntSushi/toml, from the Go peer's
  /// folder) reads it into a map, as JSON with sorted keys, without `recipe_store`: a small Go
  /// program built once per test process, offline.
  static let goDecoder: Result<String, Error> = Result {
    guard RegistryPeer.goCommand != nil, let peer = RegistryPeer.sourceDir else {
      throw TsukuError(.unavailable, "Go or the Go peer folder is missing")
    }
    let work = RegistryPeer.workDir
    let dir = work + "/tomlview-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Data(
      """
      module tomlview

      go 1.22

      require github.com/BurntSushi/toml v1.5.0

      replace github.com/BurntSushi/toml => \(peer)/third/toml

      """.utf8
    ).write(to: URL(fileURLWithPath: dir + "/go.mod"))
    try Data(
      """
      package main

      import (
      \t"encoding/json"
      \t"fmt"
      \t"os"

      \t"github.com/BurntSushi/toml"
      )

      func main() {
      \tvar v map[string]any
      \tif _, err := toml.DecodeFile(os.Args[1], &v); err != nil {
      \t\tfmt.Fprintln(os.Stderr, err)
      \t\tos.Exit(2)
      \t}
      \tdelete(v, "recipe_store")
      \tjson.NewEncoder(os.Stdout).Encode(v)
      }

      """.utf8
    ).write(to: URL(fileURLWithPath: dir + "/main.go"))
    return try RegistryPeer.goBuild(in: dir, package: ".", output: work + "/tomlview-bin-\(getpid())")
  }

  func goView(_ text: String) throws -> String {
    let dir = try TemporaryDirectory(prefix: "tsuku-goview")
    let file = dir.file("config.toml")
    try Data(text.utf8).write(to: URL(fileURLWithPath: file))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try Self.goDecoder.get())
    p.arguments = [file]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try #require(p.terminationStatus == 0, "the Go decoder refused:\n\(text)")
    return String(decoding: data, as: UTF8.self)
  }

  func ownTable(_ text: String) throws -> [String: Any] {
    try #require(try parsed(text, dropOwn: false)["recipe_store"] as? [String: Any])
  }

  // MARK: config.toml

  @Test func initOverTheGoClientsConfigKeepsEveryByteAndAddsOnlyItsTable() throws {
    let w = try world()
    try write(Self.goConfig, config(w))
    var r = try initAgain(w)
    #expect(r.status == 0, "\(r.stderr)")
    let after = try #require(read(config(w)))
    // The Go client's file is kept whole, byte for byte; this program's table follows it.
    #expect(after.hasPrefix(Self.goConfig), "\(after)")
    let added = String(after.dropFirst(Self.goConfig.count))
    #expect(added.hasPrefix("\n[recipe_store]\n"), "\(added)")
    #expect(!added.contains("telemetry") && !added.contains("[llm]"))
    #expect(try parsed(after) == parsed(Self.goConfig), "the Go client's view changed")
    // The Go client's own decoder reads the same settings from both.
    let goBefore = try goView(Self.goConfig)
    #expect(goBefore.contains("\"acme/recipes\"") && goBefore.contains("\"telemetry\":false"), "\(goBefore)")
    #expect(try goView(after) == goBefore)
    #expect(try ownTable(after)["sources"] as? String == w.store)
    // The permissions stay the Go client's (0600: it may hold secrets).
    var st = stat()
    #expect(stat(config(w), &st) == 0 && st.st_mode & 0o777 == 0o600)
    // Idempotent: a second init writes the same bytes.
    r = try initAgain(w)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(read(config(w)) == after)
    // And the configuration is what this program reads.
    try? FileManager.default.removeItem(atPath: w.dir.file("home/cache"))
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
  }

  @Test func initReplacesOnlyItsOwnLinesInsideItsTable() throws {
    let w = try world()
    let own = """
      [recipe_store]
      # tsuku recipe store: written by 'tsuku init' (the Go tsuku client ignores this table).
      # TSUKU_SOURCES overrides sources for one command. Like GOPROXY: after ',' the next source
      # is tried only when this one lacks the thing, after '|' on any failure.
      sources = "file:///old/one"
      # mine: a note a user wrote in the table
      future_setting = "kept" # a key a later version may write

      """
    let (head, tail) = ("telemetry = true\n\n[llm]\n  enabled = false\n\n", "# about updates\n[updates]\n  self_update = true\n")
    try write(head + own + tail, config(w))
    let r = try initAgain(w, sources: [w.store, "file:///mirror/two"])
    #expect(r.status == 0, "\(r.stderr)")
    let after = try #require(read(config(w)))
    let expected =
      head + own.replacingOccurrences(of: "sources = \"file:///old/one\"", with: "sources = \"\(w.store),file:///mirror/two\"")
      + tail
    #expect(after == expected, "\(after)")
    #expect(try ownTable(after)["future_setting"] as? String == "kept")
  }

  @Test func theOldTopLevelFormIsReadAndMovedIntoTheTable() throws {
    let w = try world()
    // As older versions wrote it, then the Go client's settings added below it.
    let legacy = """
      # written by 'tsuku init'; TSUKU_SOURCES overrides it for one command.
      # Like GOPROXY: after ',' the next source is tried only when this one lacks the thing,
      # after '|' on any failure.
      sources = "\(w.store)"
      telemetry = false

      [registries."acme/recipes"]
        url = "https://github.com/acme/recipes"

      """
    try write(legacy, config(w))
    // Read as before: the configured source is used.
    try? FileManager.default.removeItem(atPath: w.dir.file("home/cache"))
    var r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    r = try initAgain(w)
    #expect(r.status == 0, "\(r.stderr)")
    let after = try #require(read(config(w)))
    let top = after.components(separatedBy: "\n[")[0]
    #expect(!top.contains("sources") && !top.contains("GOPROXY"), "\(after)")
    #expect(
      after.hasPrefix("telemetry = false\n\n[registries.\"acme/recipes\"]\n  url = \"https://github.com/acme/recipes\"\n\n"),
      "\(after)")
    let view = try parsed(after).mutableCopy() as! NSMutableDictionary
    let old = try parsed(legacy).mutableCopy() as! NSMutableDictionary
    old["sources"] = nil
    #expect(view == old)
    #expect(try ownTable(after)["sources"] as? String == w.store)
  }

  @Test func anUnparsableConfigIsRefusedAndLeftUnchanged() throws {
    let w = try world()
    let broken = Self.goConfig.replacingOccurrences(of: "  enabled = true\n  local_enabled", with: "  enabled = = true\n  local_enabled")
    try write(broken, config(w))
    let root = FileManager.default.contents(atPath: w.dir.file("home/trust/root.json"))
    let r = try initAgain(w)
    #expect(r.status == 64)
    #expect(r.stderr.hasPrefix("error: '\(config(w))': line 7: "), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(read(config(w)) == broken)
    #expect(FileManager.default.contents(atPath: w.dir.file("home/trust/root.json")) == root)
    // Not UTF-8: refused too.
    let binary = Data([0x74, 0x3D, 0x22, 0xFF, 0x22, 0x0A])
    try binary.write(to: URL(fileURLWithPath: config(w)))
    #expect(try initAgain(w).status == 64)
    #expect(FileManager.default.contents(atPath: config(w)) == binary)
  }

  /// Attack: `config.toml` is a link to a file outside the home (a dangling one, or another
  /// file holding TOML). Nothing is written through it: the link is replaced by a file of
  /// its own; the target is unchanged and a dangling target is never created.
  @Test func aSymlinkedConfigIsNeverWrittenThrough() throws {
    let w = try world()
    let victim = w.dir.file("victim.toml")
    try write(Self.goConfig, victim, mode: 0o644)
    unlink(config(w))
    try FileManager.default.createSymbolicLink(atPath: config(w), withDestinationPath: victim)
    var r = try initAgain(w)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(read(victim) == Self.goConfig, "written through the link")
    var st = stat()
    #expect(lstat(config(w), &st) == 0 && st.st_mode & S_IFMT == S_IFREG)
    #expect(read(config(w))?.hasPrefix(Self.goConfig) == true)
    #expect(r.stderr.contains("was a symbolic link"), "\(r.stderr)")
    let absent = w.dir.file("created-through-the-link.toml")
    unlink(config(w))
    try FileManager.default.createSymbolicLink(atPath: config(w), withDestinationPath: absent)
    r = try initAgain(w)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: absent))
    #expect(lstat(config(w), &st) == 0 && st.st_mode & S_IFMT == S_IFREG)
  }

  /// Attack: keys that look like paths are data, never paths: they are kept as written and
  /// nothing is created outside the home.
  @Test func traversalLikeKeysAreKeptAndNeverUsedAsPaths() throws {
    let w = try world()
    let text = """
      "../../../escape" = "x"
      "/tmp/absolute" = 1

      [registries."../../outside"]
        url = "../../outside"

      [recipe_store]
      "../../evil" = true
      sources = "../../not-the-source"

      """
    try write(text, config(w))
    let before = try FileManager.default.contentsOfDirectory(atPath: w.dir.path).sorted()
    let r = try initAgain(w)
    #expect(r.status == 0, "\(r.stderr)")
    let after = try #require(read(config(w)))
    #expect(try parsed(after) == parsed(text))
    #expect(try goView(after) == goView(text))
    #expect(try ownTable(after)["../../evil"] as? Bool == true)
    #expect(try ownTable(after)["sources"] as? String == w.store)
    #expect(try FileManager.default.contentsOfDirectory(atPath: w.dir.path).sorted() == before)
    #expect(!FileManager.default.fileExists(atPath: "/tmp/absolute"))
  }

  /// Documents this program cannot edit without touching someone else's bytes are refused,
  /// unchanged; tricky but ordinary ones (CRLF, strings and arrays spanning lines) are kept.
  @Test func theEditorKeepsTrickyDocumentsAndRefusesWhatItCannotEdit() throws {
    let c = Config(sources: ["file:///s"])
    let crlf = "a = \"\"\"\r\n[recipe_store]\r\nsources = 1\r\n\"\"\"\r\nb = [\r\n  1, # [x]\r\n  2,\r\n]\r\n"
    let out = String(decoding: try ConfigFile.edit(Data(crlf.utf8), with: c, path: "config.toml"), as: UTF8.self)
    #expect(out == crlf + "\r\n[recipe_store]\r\n" + ConfigFile.render(c).map { $0 + "\r\n" }.joined())
    #expect(try parsed(out) == parsed(crlf))
    let edited = try ConfigFile.edit(Data(out.utf8), with: c, path: "config.toml")
    #expect(String(decoding: edited, as: UTF8.self) == out, "not idempotent")
    // recipe_store defined by a dotted key, or as an array of tables: refused.
    for doc in ["recipe_store.sources = \"x\"\n", "[[recipe_store]]\nsources = \"x\"\n", "recipe_store = 3\n"] {
      #expect(throws: TsukuError.self) { try ConfigFile.edit(Data(doc.utf8), with: c, path: "config.toml") }
    }
    // An empty or absent file: the table alone.
    let fresh = String(decoding: try ConfigFile.edit(nil, with: c, path: "config.toml"), as: UTF8.self)
    #expect(fresh == "[recipe_store]\n" + ConfigFile.render(c).map { $0 + "\n" }.joined())
  }

  // MARK: variables

  /// The variables both programs read take the Go client's duration form, so one setting
  /// serves both: `TSUKU_API_TIMEOUT=1m` (Go's `time.ParseDuration`) used to be refused here.
  @Test func durationsInTheGoClientsFormAreAccepted() throws {
    let w = try world()
    #expect(try w.run("update-registry").status == 0)
    for env in [
      ["TSUKU_API_TIMEOUT": "1m"], ["TSUKU_API_TIMEOUT": "2m30s"], ["TSUKU_API_TIMEOUT": "30"],
      ["TSUKU_RECIPE_CACHE_TTL": "1h30m"], ["TSUKU_RECIPE_CACHE_MAX_STALE": "168h"], ["TSUKU_REVOCATION_TTL": "90m"],
    ] {
      let r = try w.run("show", "fzf", env: env)
      #expect(r.status == 0, "\(env): \(r.stderr)")
    }
    // (TSUKU_API_TIMEOUT is read when a remote store is opened.)
    #expect(try TransportOptions.apiTimeout(["TSUKU_API_TIMEOUT": "1m"]) == 60)
    #expect(throws: TsukuError.self) { try TransportOptions.apiTimeout(["TSUKU_API_TIMEOUT": "1m-"]) }
    #expect(throws: TsukuError.self) { try TransportOptions.apiTimeout(["TSUKU_API_TIMEOUT": "25h"]) }
    #expect(GoDuration.seconds("2h45m") == 9900)
    #expect(GoDuration.seconds("300ms") == 0.3)
    #expect(GoDuration.seconds("1.5h") == 5400)
    for bad in ["", "30", "-1s", "1x", "m", "1h 30m"] { #expect(GoDuration.seconds(bad) == nil, "\(bad)") }
    #expect(Duration.parse("1h30m") == 5400 && Duration.parse("7d") == 604800 && Duration.parse("90") == 90)
  }

  // MARK: cache and audit log

  /// The Go client's files under `cache/` (named as it names them) and elsewhere in the home.
  static let goFiles: [String: String] = [
    "cache/downloads/4f2c9e0d1a3b5c7e9f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70.data": "tarball bytes",
    "cache/downloads/4f2c9e0d1a3b5c7e9f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70.meta":
      "{\"url\":\"https://example.invalid/fzf.tgz\"}",
    "cache/versions/fzf.json": "{\"versions\":[\"0.56.3\"]}",
    "cache/taps/acme/homebrew-tools.json": "{}",
    "cache/keys/0123456789ABCDEF.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
    "cache/cargo-registry/index/config.json": "{}",
    "cache/distributed/acme/recipes/_source.json": "{}",
    "cache/distributed/acme/recipes/fzf.toml": "[metadata]\nname = \"fzf\"\n",
    "cache/updates/fzf.json": "{}",
    "cache/binary-index.db": "SQLite format 3\0",
    "registry/f/fzf.toml": "[metadata]\nname = \"fzf\"\n",
    "registry/f/fzf.meta.json": "{}",
    "registry/manifest.json": "{\"schema_version\":1,\"recipes\":[]}",
    "state.json": "{\"installed\":{}}",
    "tools/fzf-0.56.3/bin/fzf": "#!/bin/sh\n",
    "env": "export PATH=\"$HOME/.tsuku/bin:$PATH\"\n",
    "audit.log": "{\"timestamp\":\"2026-12-01T00:00:00Z\",\"action\":\"auto-install\",\"recipe\":\"fzf\",\"version\":\"0.56.3\",\"mode\":\"auto\"}\n",
  ]

  func plantGoFiles(_ w: CLIWorld) throws {
    for (rel, text) in Self.goFiles {
      let p = w.dir.file("home/" + rel)
      try FileManager.default.createDirectory(
        atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try Data(text.utf8).write(to: URL(fileURLWithPath: p))
    }
  }

  func goFilesIntact(_ w: CLIWorld) -> [String] {
    Self.goFiles.compactMap { rel, text in
      FileManager.default.contents(atPath: w.dir.file("home/" + rel)) == Data(text.utf8) ? nil : rel
    }
  }

  @Test func cacheClearRemovesOnlyThisProgramsFiles() throws {
    let w = try world()
    var r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    try plantGoFiles(w)
    let cache = w.dir.file("home/cache")
    let ours = try FileManager.default.contentsOfDirectory(atPath: cache).filter(Home.isOwnCacheEntry).sorted()
    #expect(ours.contains("index.json") && ours.contains("meta.json") && ours.contains("packs"), "\(ours)")
    r = try w.run("cache", "clear", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let out = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(out["removed"] as? [String] == ours)
    #expect(
      out["kept"] as? [String] == ["binary-index.db", "cargo-registry", "distributed", "downloads", "keys", "taps", "updates", "versions"])
    #expect(goFilesIntact(w) == [], "the Go client's files were touched")
    let left = try FileManager.default.contentsOfDirectory(atPath: cache)
    #expect(!left.contains(where: Home.isOwnCacheEntry), "\(left)")
    // The cache fills again beside them; --trust and init --force keep them too.
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("cache", "clear", "--trust")
    #expect(r.status == 0 && r.out.contains("kept 8 entries"), "\(r.out)\(r.stderr)")
    #expect(goFilesIntact(w) == [])
    #expect(!FileManager.default.fileExists(atPath: w.dir.file("home/trust")))
  }

  @Test func initForceKeepsTheGoClientsCache() throws {
    let w = try world()
    #expect(try w.run("update-registry").status == 0)
    try plantGoFiles(w)
    // Another registry: init --force clears this program's cache, not the Go client's.
    let other = try CLIWorld()
    try other.setUp()
    let r = try runTsuku(
      ["init", "--force", "--root", other.dir.file("store/root/1.root.json"), "--source", other.store], env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(goFilesIntact(w) == [])
    #expect(!FileManager.default.fileExists(atPath: w.dir.file("home/cache/index.json")))
  }

  /// The Go client appends its auto-install lines to `$TSUKU_HOME/audit.log`; this program's
  /// log is `store-audit.log`. An older home's history (its lines in `audit.log`, its rotated
  /// files) is moved over on the first write and still answers; the Go client's file stays
  /// byte for byte.
  @Test func theAuditLogNoLongerSharesTheGoClientsFile() throws {
    let w = try world()
    #expect(try w.run("update-registry").status == 0)
    let home = w.dir.file("home")
    // A home as older versions left it: this program's lines in audit.log, a rotated file,
    // with the Go client's lines among them.
    let ours = try #require(read(home + "/store-audit.log"))
    let goLine = Self.goFiles["audit.log"]!
    let legacy = goLine + ours + goLine
    try write(legacy, home + "/audit.log")
    let rotated = "{\"event\":\"trust_change\",\"time\":\"2026-11-30T00:00:00Z\",\"detail\":\"old\"}\n"
    try write(rotated, home + "/audit.log.1")
    try FileManager.default.removeItem(atPath: home + "/store-audit.log")
    // Read before any write: the old files, the Go client's lines skipped.
    var r = try w.run("audit", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let before = r.out.split(separator: "\n").count
    // The first write moves the history over.
    r = try w.run("show", "fzf")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(read(home + "/audit.log") == legacy, "the Go client's audit.log changed")
    #expect(read(home + "/store-audit.log.1") == rotated)
    #expect(!FileManager.default.fileExists(atPath: home + "/audit.log.1"))
    let now = try #require(read(home + "/store-audit.log"))
    #expect(now.hasPrefix(ours), "\(now)")
    #expect(!now.contains("auto-install"))
    r = try w.run("audit", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("\"old\"") && r.out.split(separator: "\n").count > before, "\(r.out)")
  }
}
