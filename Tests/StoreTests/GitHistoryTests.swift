import Foundation
import TestSupport
import Testing

@testable import Store

/// The git backend's history fallback, on repositories built here: blobs that left the tip,
/// tampered history, the window, the map cache, commit dates and pruning.
@Suite struct GitHistoryTests {
  let day: TimeInterval = 86400
  /// A fixed date well before today, so "counted from the newest commit" differs from "from today".
  let t0 = Date(timeIntervalSince1970: 1_600_000_000)  // 2020-09-13

  func withRepository(_ body: (String, String) throws -> Void) throws {
    try withTemporaryDirectory { tmp in try body(try makeGitRepository(at: tmp + "/repo"), tmp) }
  }

  @Test func blobsThatLeftTheTipAreServedFromHistory() throws {
    try withRepository { repo, _ in
      let store = try GitStore(repository: repo, subdirectory: "registry-index/store")
      let (a, b, c) = (Data("golden a".utf8), Data("golden b".utf8), Data("recipe c".utf8))
      let first = try #require(
        try store.apply(StoreChange(objects: [a, b, c], documents: [(.index, Data("1".utf8))], time: t0)).commit)
      let report = try store.apply(
        StoreChange(documents: [(.index, Data("2".utf8))], time: t0 + day, keepOnly: [SHA256.hash(c)]))
      #expect(report.objectsPruned == 2)
      let tip = try #require(report.commit)
      #expect(try store.list() == [SHA256.hash(c)])
      // Without history, a blob that left the tip is not found.
      #expect(errorCode { _ = try store.get(SHA256.hash(a), maxSize: 100) } == .notFound)
      #expect(try !store.contains(SHA256.hash(a)))

      store.enableHistory(days: 90, cacheDirectory: nil)
      #expect(try store.get(SHA256.hash(a), maxSize: 100) == a)
      #expect(try store.get(SHA256.hash(b), maxSize: 100) == b)
      #expect(try store.contains(SHA256.hash(b)))
      #expect(store.historyCommit(for: SHA256.hash(a)) == first)
      #expect(try store.get(SHA256.hash(c), maxSize: 100) == c)  // at the tip
      #expect(store.historyCommit(for: SHA256.hash(c)) == nil && store.commitID == tip)
      #expect(try store.list() == [SHA256.hash(c)])  // list stays tip-only
      // Sizes are checked from the object header, as at the tip.
      #expect(errorCode { _ = try store.get(SHA256.hash(a), maxSize: 3) } == .integrity)
      // A blob that was never committed is still not found, and the message says where it looked.
      do {
        _ = try store.get(SHA256.hash("never"), maxSize: 100)
        Issue.record("served a blob that was never committed")
      } catch let e as TsukuError {
        #expect(e.code == .notFound)
        #expect(e.message.hasSuffix("at its tip or in the last 90 days of its history"))
      }
      #expect(store.historyStats.walks == 1)  // one map per tip
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func pruningDropsEmptyFoldersAndKeepsGitHappy() throws {
    try withRepository { repo, _ in
      let store = try GitStore(repository: repo)
      let (a, c) = (Data("only blob in its folder".utf8), Data("kept".utf8))
      try store.apply(StoreChange(objects: [a, c], documents: [(.index, Data("1".utf8))]))
      try store.apply(StoreChange(documents: [(.index, Data("2".utf8))], keepOnly: [SHA256.hash(c)]))
      let files = try runGit(["ls-tree", "-r", "-t", "--name-only", "main"], in: repo).split(separator: "\n").map(
        String.init)
      #expect(!files.contains("objects/sha256/" + SHA256.hash(a).fanout))
      #expect(files.contains(SHA256.hash(c).path))
      try runGit(["fsck", "--strict", "--no-dangling"], in: repo)
      // The blobs a change writes are kept even when keepOnly does not name them.
      let d = Data("new".utf8)
      let r = try store.apply(StoreChange(objects: [d], keepOnly: []))
      #expect(r.objectsPruned == 1 && r.objectsWritten == 1)
      #expect(try store.list() == [SHA256.hash(d)])
    }
  }

  @Test func tamperedHistoricBlobIsRefused() throws {
    try withRepository { repo, _ in
      let store = try GitStore(repository: repo)
      let good = Data("the real golden file".utf8)
      let other = Data("a blob only ever committed with wrong bytes".utf8)
      try store.apply(StoreChange(objects: [good], time: t0))
      // A careless or malicious commit puts wrong bytes at the right paths, then they leave.
      let evil = try #require(
        try store.commitRaw([
          (SHA256.hash(good).path, Data("evil".utf8)), (SHA256.hash(other).path, Data("evil 2".utf8)),
        ]))
      try store.apply(StoreChange(documents: [(.index, Data("i".utf8))], keepOnly: []))
      store.enableHistory(days: 0, cacheDirectory: nil)
      do {
        _ = try store.get(SHA256.hash(other), maxSize: 100)
        Issue.record("served tampered bytes")
      } catch let e as TsukuError {
        #expect(e.code == .integrity)
        #expect(e.message.contains("is corrupt: its bytes hash to '\(SHA256.hash("evil 2").hex)'"))
        #expect(e.details == ["found in commit '\(evil)' of the history"])
      }
      // The wrong bytes at a path do not shadow the right ones an older commit holds.
      #expect(try store.get(SHA256.hash(good), maxSize: 100) == good)
      #expect(store.historyCommit(for: SHA256.hash(good)) != evil)
    }
  }

  @Test func windowCountsBackFromTheNewestCommit() throws {
    try withRepository { repo, _ in
      let store = try GitStore(repository: repo)
      let (old, recent, tip) = (Data("old".utf8), Data("recent".utf8), Data("tip".utf8))
      // Years before today: a window counted from today would hold none of these commits.
      try store.apply(StoreChange(objects: [old], time: t0))
      try store.apply(StoreChange(objects: [recent], time: t0 + 60 * day, keepOnly: []))
      try store.apply(StoreChange(objects: [tip], time: t0 + 100 * day, keepOnly: []))
      #expect(store.commitDate == t0 + 100 * day)
      func lookup(_ data: Data, days: Int) throws -> TsukuError.Code? {
        let s = try GitStore(repository: repo)
        s.enableHistory(days: days, cacheDirectory: nil)
        return errorCode {
          let got = try s.get(SHA256.hash(data), maxSize: 100)
          #expect(got == data)
        }
      }
      #expect(try lookup(recent, days: 90) == nil)
      #expect(try lookup(recent, days: 40) == nil)  // exactly 40 days before the newest commit
      #expect(try lookup(old, days: 90) == .notFound)  // 100 days before the newest commit
      #expect(try lookup(old, days: 99) == .notFound)
      #expect(try lookup(old, days: 100) == nil)
      #expect(try lookup(old, days: 0) == nil)  // all history
      #expect(try lookup(recent, days: 39) == .notFound)
    }
  }

  @Test func historyMapIsCachedOnDiskAndReused() throws {
    try withRepository { repo, tmp in
      let cache = tmp + "/cache/git-history"
      let store = try GitStore(repository: repo)
      let (a, b) = (Data("left the tip".utf8), Data("stays".utf8))
      try store.apply(StoreChange(objects: [a, b], time: t0))
      try store.apply(StoreChange(documents: [(.index, Data("i".utf8))], time: t0 + day, keepOnly: [SHA256.hash(b)]))
      func fresh() throws -> GitStore {
        let s = try GitStore(repository: repo)
        s.enableHistory(days: 90, cacheDirectory: cache)
        return s
      }
      func maps() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: cache).sorted() }

      let first = try fresh()
      #expect(try first.get(SHA256.hash(a), maxSize: 100) == a)
      #expect(first.historyStats == (walks: 1, loads: 0))
      let files = try maps()
      #expect(files.count == 1 && files[0].hasSuffix("-\(first.commitID).map"))
      // A new store (as in a new process) loads the map instead of walking the commits.
      let second = try fresh()
      #expect(try second.get(SHA256.hash(a), maxSize: 100) == a)
      #expect(try second.contains(SHA256.hash(a)))
      #expect(second.historyStats == (walks: 0, loads: 1))
      #expect(try !second.contains(SHA256.hash("never")))
      // Another window is another map.
      let wide = try GitStore(repository: repo)
      wide.enableHistory(days: 0, cacheDirectory: cache)
      #expect(try wide.contains(SHA256.hash(a)) && wide.historyStats.walks == 1)
      #expect(try maps().count == 2)

      // A damaged file is ignored and rewritten.
      let path = cache + "/" + files[0]
      try Data("TSKHIST2 but truncated".utf8).write(to: URL(fileURLWithPath: path))
      let third = try fresh()
      #expect(try third.get(SHA256.hash(a), maxSize: 100) == a)
      #expect(third.historyStats == (walks: 1, loads: 0))
      // A well-formed file that points at the wrong git blob is rebuilt before anything is refused.
      var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
      let map = try #require(GitHistoryMap(data: bytes))
      let at = GitHistoryMap.headerSize + map.commitCount * GitHistoryMap.oidSize
      for i in 0..<map.entryCount where Array(bytes[(at + i * 56)..<(at + i * 56 + 32)]) == SHA256.hash(a).bytes {
        for j in 0..<20 { bytes[at + i * 56 + 32 + j] ^= 0xff }
      }
      try bytes.write(to: URL(fileURLWithPath: path))
      let fourth = try fresh()
      #expect(try fourth.get(SHA256.hash(a), maxSize: 100) == a)
      #expect(fourth.historyStats == (walks: 1, loads: 1))

      // A new tip gets a new map, and the old tip's map is removed.
      try store.apply(StoreChange(objects: [Data("more".utf8)], time: t0 + 2 * day))
      let fifth = try fresh()
      #expect(try fifth.get(SHA256.hash(a), maxSize: 100) == a)
      #expect(fifth.historyStats == (walks: 1, loads: 0))
      #expect(try maps().filter { $0.hasSuffix("-\(fifth.commitID).map") }.count == 1)
      #expect(try maps().count == 2)  // this window's new map, and the all-history one
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func storeChangeTimeDatesTheCommit() throws {
    try withRepository { repo, _ in
      let store = try GitStore(repository: repo)
      let when = try #require(ISO8601DateFormatter().date(from: "2026-01-26T12:26:06Z"))
      try store.apply(StoreChange(objects: [Data("x".utf8)], message: "replayed", time: when))
      #expect(store.commitDate == when)
      let dates = try runGit(["log", "-1", "--format=%at %ct %an", "main"], in: repo)
      #expect(dates == "\(Int(when.timeIntervalSince1970)) \(Int(when.timeIntervalSince1970)) tsuku registry")
      // Without a time the commit is dated now.
      try store.apply(StoreChange(objects: [Data("y".utf8)]))
      #expect(abs(store.commitDate.timeIntervalSinceNow) < 300)
    }
  }

  /// A measurement driver, not a check: with `TSUKU_HISTORY_BENCH='REPO SUBDIR SHA256 SIZE DAYS
  /// [CACHEDIR]'` (DAYS -1: no history), times opening the store and one verified `get` in this
  /// process, which is a fresh one when the test is run alone (`--filter measureOneLookup`).
  @Test(
    .enabled(
      if: ProcessInfo.processInfo.environment["TSUKU_HISTORY_BENCH"] != nil, "set TSUKU_HISTORY_BENCH to measure"))
  func measureOneLookup() throws {
    let f = (ProcessInfo.processInfo.environment["TSUKU_HISTORY_BENCH"] ?? "").split(separator: " ").map(String.init)
    try #require(f.count >= 5, "TSUKU_HISTORY_BENCH='REPO SUBDIR SHA256 SIZE DAYS [CACHEDIR]'")
    let (id, size, days) = (try ObjectID.parse(f[2]), try #require(Int(f[3])), try #require(Int(f[4])))
    var store: GitStore?
    var got = Data()
    let clock = ContinuousClock()
    let elapsed = try clock.measure {
      let s = try GitStore(repository: f[0], subdirectory: f[1])
      if days >= 0 { s.enableHistory(days: days, cacheDirectory: f.count > 5 ? f[5] : nil) }
      got = try s.get(id, maxSize: size)
      store = s
    }
    let walk = try #require(store).lastHistoryWalk
    print("walk: \(walk.commits) commits, \(walk.entries) tree entries loaded, \(walk.rows) rows")
    #expect(SHA256.hash(got) == id)
    let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
    let stats = try #require(store).historyStats
    print(
      "lookup \(f[2].prefix(12)): \(String(format: "%.2f", ms)) ms (open + get), history walks \(stats.walks), map loads \(stats.loads)"
    )
  }

  @Test func mapKeepsEveryGitBlobOfANameNewestFirst() throws {
    let tip = [UInt8](repeating: 7, count: 20)
    var b = GitHistoryMap.Builder(tip: tip, days: 30)
    let (x, y) = (SHA256.hash("x"), SHA256.hash("y"))
    let (c0, c1) = (b.commit([UInt8](repeating: 1, count: 20)), b.commit([UInt8](repeating: 2, count: 20)))
    b.add(y, blob: [UInt8](repeating: 0xa, count: 20), commit: c1)
    b.add(x, blob: [UInt8](repeating: 0xb, count: 20), commit: c1)
    b.add(x, blob: [UInt8](repeating: 0xb, count: 20), commit: c0)  // same blob, newer commit: one entry
    b.add(x, blob: [UInt8](repeating: 0xc, count: 20), commit: c1)
    let map = b.finish()
    #expect(map.entryCount == 3 && map.tip == tip && map.days == 30)
    #expect(map.candidates(x).map(\.blob) == [[UInt8](repeating: 0xb, count: 20), [UInt8](repeating: 0xc, count: 20)])
    #expect(map.candidates(x).first?.commit == [UInt8](repeating: 1, count: 20))
    #expect(map.candidates(y).count == 1)
    #expect(map.candidates(SHA256.hash("z")).isEmpty)
    #expect(GitHistoryMap(data: map.data.dropLast()) == nil)
    #expect(GitHistoryMap(data: Data(count: 48)) == nil)
  }
}
