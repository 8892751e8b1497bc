import Foundation
import Store
import Sync
import TestSupport
import Testing

/// The client's use of git history: a golden file that left the git tip is still served,
/// verified, when the bucket that indexes it is down. Runs anywhere (no corpus needed).
@Suite struct GitHistoryClientTests {
  @Test func goldenFileThatLeftTheTipIsServedWhenTheBucketIsDown() throws {
    let fx = try RegistryFixture()
    let tmp = fx.dir.path
    let repo = try makeGitRepository(at: tmp + "/repo", bare: true)
    let gitURL = "git+file://\(repo)?dir=store"
    let git = try GitStore(repository: repo, subdirectory: "store")
    try fx.initialize(git)
    let golden = RegistryFixture.golden("fzf", version: "0.60.0")
    let both = try fx.writeInput(
      "v1", recipes: ["fzf": RegistryFixture.recipe("fzf")], golden: ["f/fzf/v0.60.0-linux-amd64.json": golden])
    let recipesOnly = try fx.writeInput("v2", recipes: ["fzf": RegistryFixture.recipe("fzf")])
    let first = try Publisher.publish(
      both, keys: [fx.indexKey], revocationKeys: [fx.revocationKey], to: [git], expiresDays: 30, now: fx.now,
      commitTime: fx.now - 20 * 86400, prune: true)
    let second = try Publisher.publish(
      recipesOnly, keys: [fx.indexKey], to: [git], expiresDays: 30, now: fx.now, commitTime: fx.now - 10 * 86400,
      prune: true, allowRemovals: true)
    #expect(second.targets[0].report.objectsPruned >= 1)
    let id = SHA256.hash(Data(golden.utf8))
    #expect(try !GitStore(repository: repo, subdirectory: "store").contains(id))

    let bucket = tmp + "/bucket"
    let store = DirectoryStore(path: bucket)
    try fx.initialize(store)
    try fx.publish(both, to: store)
    let chain = try SourceChain.parse("file://\(bucket)|\(gitURL)")
    let home = try fx.home()
    _ = try Client(home: home, chain: chain, now: fx.now).updateRegistry(includeGolden: false)
    #expect(try !home.cache.contains(id))
    try FileManager.default.removeItem(atPath: bucket)

    do {
      let client = Client(home: home, chain: chain, now: fx.now)
      defer { client.flush() }
      #expect(try client.plan("fzf", platform: "linux-amd64", version: nil) == Data(golden.utf8))
    }
    #expect(try home.cache.contains(id))
    #expect(try FileManager.default.contentsOfDirectory(atPath: home.cacheDir + "/git-history").count == 1)
    let audit = try String(contentsOfFile: home.path + "/store-audit.log", encoding: .utf8).split(separator: "\n")
      .map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.utf8)) }
    let fetch = try #require(audit.last { $0.event == "fetch" })
    #expect(fetch.sha256 == id.hex && fetch.source == gitURL)
    #expect(fetch.source_commit == first.targets[0].report.commit)
  }

  @Test func historyDaysComeFromTheEnvironment() throws {
    #expect(try GitHistoryDays.fromEnvironment([:]) == 90)
    #expect(try GitHistoryDays.fromEnvironment(["TSUKU_GIT_HISTORY_DAYS": ""]) == 90)
    #expect(try GitHistoryDays.fromEnvironment(["TSUKU_GIT_HISTORY_DAYS": "0"]) == 0)
    #expect(try GitHistoryDays.fromEnvironment(["TSUKU_GIT_HISTORY_DAYS": " 365 "]) == 365)
    for bad in ["-1", "abc", "1.5", "90d", "36501", "99999999999999999999"] {
      do {
        _ = try GitHistoryDays.fromEnvironment(["TSUKU_GIT_HISTORY_DAYS": bad])
        Issue.record("accepted '\(bad)'")
      } catch let e as TsukuError {
        #expect(e.code == .usage)
        #expect(e.message.hasPrefix("invalid TSUKU_GIT_HISTORY_DAYS '\(bad)': "))
      }
    }
  }
}
