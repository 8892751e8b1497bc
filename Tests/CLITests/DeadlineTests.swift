import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A slow or silent source costs a command at most its time limit (`TSUKU_API_TIMEOUT`, one
/// budget for all the command's requests), and a wait says what it is waiting for. Each run is
/// guarded by a kill timer, so that a command that runs on past its limit fails the test.
@Suite(.serialized) struct DeadlineTests {
  /// Far above the limits below, far below what a per-request budget lets a slow source take.
  static let guardSeconds = 20.0

  func run(_ w: CLIWorld, _ args: [String], env extra: [String: String]) throws -> CommandResult {
    try runTsuku(args, env: w.env.merging(extra) { $1 }, binary: w.bin, killAfter: Self.guardSeconds)
  }

  @Test func sourceAnsweringEveryRequestAfterTwoSecondsEndsUpdateRegistryAtTheCommandsTimeLimit() throws {
    let w = try CLIWorld()
    try w.setUp()
    let server = try LoopbackServer.serving(w.dir.file("store"), delay: 2)
    let r = try run(w, ["update-registry"], env: ["TSUKU_SOURCES": server.url, "TSUKU_API_TIMEOUT": "5"])
    #expect(r.status == 5, "\(r.status): \(r.stderr)")
    // The request it was waiting for (the source's URL and the path), and the limit.
    #expect(r.stderr.hasPrefix("error: GET '\(server.url)/"), "\(r.stderr)")
    #expect(r.stderr.contains("': the command's time limit of 5 s ran out (TSUKU_API_TIMEOUT)"), "\(r.stderr)")
    // What the sync was fetching, under the source that did not answer in time.
    #expect(r.stderr.contains("\n  \(server.url): while fetching "), "\(r.stderr)")
    // Nothing half-synced: the home still trusts what it trusted.
    #expect(try w.run("verify", "--offline").status == 0)
  }

  @Test func silentSourceAndAStaleCacheSayWhatIsAwaitedThenServeTheCacheWithAWarning() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let home = Home(path: w.dir.file("home"))
    var m = try #require(home.readCacheMeta())
    m.confirmed_at = Timestamp.format(Date().addingTimeInterval(-2 * 86400))
    try home.writeCacheMeta(m)
    let server = try LoopbackServer { _ in .hang }
    let r = try run(
      w, ["show", "fzf"], env: ["TSUKU_SOURCES": server.url, "TSUKU_API_TIMEOUT": "2", "TSUKU_PROGRESS": "1"])
    #expect(r.status == 0, "\(r.status): \(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
    let lines = r.stderr.split(separator: "\n").map(String.init)
    #expect(lines.count == 2, "\(r.stderr)")
    #expect(
      lines.first?.hasPrefix("waiting: no answer yet from GET '\(server.url)/index.json'; giving up in at most ")
        == true)
    #expect(
      lines.last
        == "warning: using cached recipe 'fzf' (last updated 2 days ago); run 'tsuku update-registry' when online")
  }

  @Test func silentSourceIsNamedOnStderrWhileWaitingOnlyWhenProgressIsOn() throws {
    let w = try CLIWorld()
    let server = try LoopbackServer { _ in .hang }
    let env = ["TSUKU_SOURCES": server.url, "TSUKU_API_TIMEOUT": "2"]
    // On: the line comes a second into the wait, before the 2 s limit ends the command.
    var r = try run(w, ["update-registry"], env: env.merging(["TSUKU_PROGRESS": "1"]) { $1 })
    #expect(r.status == 5, "\(r.stderr)")
    let line = "waiting: no answer yet from GET '\(server.url)/index.json'; giving up in at most "
    #expect(r.stderr.hasPrefix(line), "\(r.stderr)")
    #expect(r.stderr.contains("(TSUKU_API_TIMEOUT sets the limit)\n"))
    #expect(r.stderr.components(separatedBy: "waiting:").count == 2, "one line: \(r.stderr)")
    // Off, and by default when stderr is not a terminal (a pipe here): the error alone.
    for extra in [["TSUKU_PROGRESS": "0"], [:]] {
      r = try run(w, ["update-registry"], env: env.merging(extra) { $1 })
      #expect(r.status == 5, "\(r.stderr)")
      #expect(!r.stderr.contains("waiting"), "\(r.stderr)")
      #expect(r.stderr.hasPrefix("error: GET '\(server.url)/index.json'"), "\(r.stderr)")
    }
  }

  @Test func connectTimeoutOutOfRangeExits64NamingTheVariable() throws {
    let w = try CLIWorld()
    let r = try run(
      w, ["update-registry"], env: ["TSUKU_CONNECT_TIMEOUT": "1e9", "TSUKU_SOURCES": "https://127.0.0.1:1/registry"])
    #expect(r.status == 64, "\(r.stderr)")
    #expect(
      r.stderr == "error: invalid TSUKU_CONNECT_TIMEOUT '1e9': expected a number of seconds above 0, at most 600\n")
  }

  @Test(arguments: [
    ("http://127.0.0.1:99999/reg", "99999"),
    ("https://example.com:0/reg", "0"),
    ("s3://bucket/reg?endpoint=http://127.0.0.1:70000", "70000"),
  ])
  func portOutOfRangeIsOneLineNamingTheURLAndTheRange(_ url: String, _ port: String) throws {
    let w = try CLIWorld()
    let r = try run(w, ["update-registry"], env: ["TSUKU_SOURCES": url])
    #expect(r.status == 64, "\(r.stderr)")
    #expect(r.stderr == "error: invalid store URL '\(url)': port '\(port)' is not a number from 1 to 65535\n")
  }
}
