import Foundation
import TestSupport
import Testing

@testable import Store

/// What a walk of history costs on a repository crafted against it: counted in tree entries
/// loaded and rows kept, never timed.
@Suite struct GitHistoryScaleTests {
  let t0 = Date(timeIntervalSince1970: 1_600_000_000)

  /// `count` commits sharing one timestamp, each adding one entry to the fan-out folder `00`
  /// (names in their own folder, bytes unrelated to them), on top of a commit that held
  /// `golden` and one that took it out of the tip. Each commit makes a new version of the
  /// folder as large as all the commits before it: a walk that reads every version, or keeps
  /// a row per entry read, costs the square of `count`.
  func craft(_ store: GitStore, count: Int, golden: Data) throws {
    try store.apply(StoreChange(objects: [golden], documents: [(.index, Data("1".utf8))], time: t0))
    try store.apply(StoreChange(documents: [(.index, Data("2".utf8))], time: t0, keepOnly: []))
    for i in 0..<count {
      let name = "00" + SHA256.hash("crafted name \(i)").hex.dropFirst(2)
      try store.commitRaw([("objects/sha256/00/\(name)", Data("crafted \(i)".utf8))], message: "crafted \(i)", time: t0)
    }
  }

  @Test func historyMapIsLinearInCommitsSharingATimestamp() throws {
    try withTemporaryDirectory { tmp in
      let repo = try makeGitRepository(at: tmp + "/repo", bare: true)
      let golden = Data("a golden file that left the tip before the crafted commits".utf8)
      try #require(SHA256.hash(golden).fanout != "00")
      let commits = 400
      try craft(try GitStore(repository: repo), count: commits, golden: golden)

      let limits = GitHistoryLimits(total: 1 << 20, perFolder: 4096)
      let store = try GitStore(repository: repo)
      store.enableHistory(days: 90, cacheDirectory: nil, limits: limits)
      // The blob that left the tip before every crafted commit is still found and served.
      #expect(try store.get(SHA256.hash(golden), maxSize: 1000) == golden)
      let walk = store.lastHistoryWalk
      #expect(walk.commits == commits + 2)
      // Tree entries loaded and rows kept grow with the commits, not with their square
      // (reading every version of the folder is commits^2/2 = 80,000 entries and rows).
      #expect(walk.entries <= 16 * walk.commits + limits.perFolder, "loaded \(walk.entries) tree entries")
      #expect(walk.rows <= 2 * walk.commits, "kept \(walk.rows) rows")

      // The crafted folder was read only back to its limit, and a miss there says so.
      let never = SHA256.hash("never committed")
      do {
        _ = try store.get(ObjectID(bytes: [0] + never.bytes.dropFirst()), maxSize: 1000)
        Issue.record("served a blob that was never committed")
      } catch let e as TsukuError {
        #expect(e.code == .notFound)
        #expect(e.message.contains("(searched in full only back "))
      }
      // A miss in a folder searched in full says nothing of the kind.
      let elsewhere = ObjectID(bytes: SHA256.hash(golden).bytes.prefix(1) + never.bytes.dropFirst())
      do {
        _ = try store.get(elsewhere, maxSize: 1000)
        Issue.record("served a blob that was never committed")
      } catch let e as TsukuError {
        #expect(e.code == .notFound)
        #expect(e.message.hasSuffix("at its tip or in the last 90 days of its history"))
      }
    }
  }
}
