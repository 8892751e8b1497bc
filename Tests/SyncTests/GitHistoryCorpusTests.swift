import Foundation
import Store
import Sync
import TestSupport
import Testing


/// The git history fallback on the real registry history: its snapshots replayed into a git
/// store (one publish per snapshot, commit dates kept, unreferenced blobs pruned), then the
/// community golden files that left the real tree on 2026-01-26 served from history while the
/// bucket that still indexes them is down.
@Suite struct GitHistoryCorpusTests {
  @Test(
    .enabled(if: corpusAvailable, "needs git and the real corpus ../shared/corpus/tsuku-registry-history.bundle"),
    .timeLimit(.minutes(2)))
  func goldenFilesThatLeftGitAreServedFromHistoryWhenTheBucketIsDown() throws {
    let fx = try RegistryFixture()
    let tmp = fx.dir.path
    let history = tmp + "/history"
    try runGit(["clone", "-q", "-b", "snapshots", corpusBundle, history], in: tmp)
    let snapshots = try runGit(["log", "--reverse", "--format=%H %ct"], in: history).split(separator: "\n").map {
      let f = $0.split(separator: " ")
      return (commit: String(f[0]), time: Date(timeIntervalSince1970: TimeInterval(f[1])!))
    }
    #expect(snapshots.count == 334)
    // Snapshot 64 (2026-01-26) is the last with the community golden files; 65 has none.
    func communityGolden(_ n: Int) throws -> [String] {
      try runGit(["ls-tree", "-r", "--name-only", snapshots[n - 1].commit, "registry/golden/plans"], in: history)
        .split(separator: "\n").map(String.init).filter { !$0.hasPrefix("registry/golden/plans/embedded/") }
    }
    let leaving = try communityGolden(64)
    #expect(leaving.count == 378)
    #expect(try communityGolden(65).isEmpty)

    // Replay snapshots 55..70 (2026-01-17 to 2026-02-01): the full 334 are tools/replay-corpus's job.
    let repo = try makeGitRepository(at: tmp + "/repo", bare: true)
    let gitURL = "git+file://\(repo)?dir=store"
    let git = try GitStore(repository: repo, subdirectory: "store")
    try git.apply(
      StoreChange(documents: [(.root(1), fx.root.bytes)], message: "root version 1", time: snapshots[54].time - 1))
    var input64: PublishInput?
    var refused64 = [(String, String)]()
    var commit64 = ""
    for n in 55...70 {
      try runGit(["checkout", "-q", "-f", snapshots[n - 1].commit], in: history)
      try runGit(["clean", "-q", "-f", "-d", "-x"], in: history)
      let (input, refused) = try filteredInput(history, into: tmp + "/input-\(n)")
      let r = try Publisher.publish(
        input, keys: [fx.indexKey], revocationKeys: n == 55 ? [fx.revocationKey] : [], to: [git], expiresDays: 30,
        now: fx.now, commitTime: snapshots[n - 1].time, prune: true, allowRemovals: true)
      #expect(git.commitDate == snapshots[n - 1].time)
      if n == 64 { (input64, refused64, commit64) = (input, refused, r.targets[0].report.commit ?? "") }
    }
    #expect(try runGit(["rev-list", "--count", "main"], in: repo) == "17")
    // 7 of the 378 are plans of 'build-tools-system', which has no recipe in these snapshots:
    // an index entry is a recipe, so no index can carry them. (The 20 whose plan says
    // "version": "dev" are indexed by their names.)
    let refusedGolden = refused64.filter { $0.0.hasPrefix("registry/golden/plans/") }
    #expect(refusedGolden.count == 7, "\(refusedGolden)")
    #expect(refusedGolden.allSatisfy { $0.1.contains("'build-tools-system', which has no valid recipe") })
    #expect(refused64.count == refusedGolden.count)

    // The bucket still indexes them (as the real registry's bucket does).
    let bucket = tmp + "/bucket"
    let store = DirectoryStore(path: bucket)
    try fx.initialize(store)
    try fx.publish(try #require(input64), to: store)
    let chain = try SourceChain.parse("file://\(bucket)|\(gitURL)")
    let home = try fx.home()
    do {
      let sync = try Client(home: home, chain: chain, now: fx.now).updateRegistry(includeGolden: false)
      #expect(sync.source == "file://\(bucket)")
    }
    // The bucket goes down.
    try FileManager.default.removeItem(atPath: bucket)

    let tip = try GitStore(repository: repo, subdirectory: "store")
    var served = 0
    var sample: GoldenRef?
    do {
      let client = Client(home: home, chain: chain, now: fx.now)
      defer { client.flush() }
      let refs = try client.entries().filter { $0.category == .community }.flatMap { e in e.golden.map { (e.name, $0) }
      }
      #expect(refs.count == leaving.count - refusedGolden.count)
      var seenHashes = Set<ObjectID>()
      for (name, g) in refs {
        #expect(try !tip.contains(g.sha256), "\(name) \(g.version) \(g.platform) is at the tip")
        // Some plans have identical bytes (one blob): only the first is fetched.
        if seenHashes.insert(g.sha256).inserted { #expect(try !home.cache.contains(g.sha256)) }
        let bytes = try client.plan(name, platform: g.platform, version: g.version)
        #expect(SHA256.hash(bytes) == g.sha256 && bytes.count == g.size)
        served += 1
        sample = g
      }
    }
    #expect(served == 371)
    // The map was built once and cached in the home; the audit log names the commit each came from.
    let maps = try FileManager.default.contentsOfDirectory(atPath: home.cacheDir + "/git-history")
    #expect(maps.count == 1 && maps[0].hasSuffix("-\(tip.commitID).map"))
    let audit = try String(contentsOfFile: home.path + "/store-audit.log", encoding: .utf8).split(separator: "\n")
      .map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.utf8)) }
    let fetched = audit.filter { $0.event == "fetch" && $0.source == gitURL }
    #expect(fetched.count == Set(fetched.compactMap(\.sha256)).count)
    #expect(fetched.count >= 360)
    #expect(fetched.allSatisfy { $0.source_commit == commit64 })

    // Outside the window (1 day back from the newest commit, 2026-02-01) they are not found.
    let narrow = try GitStore(repository: repo, subdirectory: "store")
    narrow.enableHistory(days: 1, cacheDirectory: nil)
    let g = try #require(sample)
    #expect(throws: TsukuError.self) { _ = try narrow.get(g.sha256, maxSize: g.size) }
    #expect(try !narrow.contains(g.sha256))
  }
}
