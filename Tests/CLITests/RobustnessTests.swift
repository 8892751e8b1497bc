import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Several processes at once, processes killed at any moment, full and read-only disks.
@Suite(.serialized) struct RobustnessTests {
  let fzf = FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml")!

  func start(_ w: CLIWorld, _ args: [String], env extra: [String: String] = [:]) throws -> (Process, Pipe) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: w.bin)
    p.arguments = args
    p.environment = w.env.merging(extra) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    return (p, out)
  }

  func verifyClean(_ w: CLIWorld) throws {
    let r = try w.run("verify", "--json", "--offline")
    #expect(r.status == 0, "verify: \(r.out) \(r.stderr)")
  }

  @Test func eightProcessesSyncingAndReadingAtOnce() throws {
    let w = try CLIWorld()
    try w.setUp()
    var procs = [(Process, Pipe, Bool)]()
    for i in 0..<8 {
      let isSync = i % 2 == 0
      let (p, out) = try start(w, isSync ? ["update-registry", "--force"] : ["show", "fzf"])
      procs.append((p, out, isSync))
    }
    for (p, out, isSync) in procs {
      let data = out.fileHandleForReading.readDataToEndOfFile()
      p.waitUntilExit()
      #expect(p.terminationStatus == 0)
      if !isSync { #expect(data == fzf) }
    }
    try verifyClean(w)
  }

  @Test func killedAtRandomMomentsDuringSyncLeavesACacheThatVerifies() throws {
    let w = try CLIWorld()
    try w.setUp()
    var rng = SystemRandomNumberGenerator()
    for round in 0..<50 {
      if round % 10 == 0 { try? FileManager.default.removeItem(atPath: w.dir.file("home/cache")) }
      let (p, _) = try start(w, ["update-registry", "--force"])
      usleep(UInt32.random(in: 0...150_000, using: &rng))
      kill(p.processIdentifier, SIGKILL)
      p.waitUntilExit()
      try verifyClean(w)
    }
    let r = try w.run("show", "fzf")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
  }

  @Test func killedAtEveryInjectedCrashPointLeavesACacheThatVerifies() throws {
    let w = try CLIWorld()
    try w.setUp()
    var point = 1
    var crashes = 0
    var stride = 1
    var lastCrash = 0
    while point < 5000 {
      try? FileManager.default.removeItem(atPath: w.dir.file("home/cache"))
      let r = try w.run("update-registry", env: ["TSUKU_TEST_CRASH_AT": String(point)])
      if r.status == 0 {
        // Past the last write step: go back and take the final steps one by one.
        if stride == 1 { break }
        stride = 1
        point = lastCrash + 1
        continue
      }
      #expect(r.stderr.contains("crash point \(point)"), "\(r.stderr)")
      crashes += 1
      lastCrash = point
      try verifyClean(w)
      let next = try w.run("show", "fzf")
      #expect(next.status == 0, "after crash point \(point): \(next.stderr)")
      #expect(next.stdout == fzf)
      // Every step up to the 40th (each kind of write step occurs there: blob temp file, write,
      // rename; documents; trust; metadata), then every 60th of the repeated per-blob steps,
      // then every one of the last steps (index.json, trust, metadata).
      if point == 40 { stride = 60 }
      point += stride
    }
    #expect(crashes > 10)
  }

  @Test func readersNeverSeeAHalfPublishedRegistry() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let changed = w.dir.file("changed")
    try FileManager.default.copyItem(atPath: checkout + "/registry-index/source/recipes", toPath: changed)
    let fzfPath = changed + "/f/fzf.toml"
    let newFzf = try String(contentsOfFile: fzfPath, encoding: .utf8) + "\n# new release\n"
    try newFzf.write(toFile: fzfPath, atomically: true, encoding: .utf8)
    // Kill the publisher at write steps across the whole publish; after each, a reader syncs:
    // it sees either the old registry or the new one, complete, never a mix or an error.
    var point = 1
    var sawNew = false
    while point < 400 {
      let r = try w.run(
        "registry", "publish", "--recipes", changed, "--key", w.k("index"), "--to", w.store, "--allow-removals",
        env: ["TSUKU_TEST_CRASH_AT": String(point)])
      let sync = try w.run("update-registry", "--force")
      #expect(sync.status == 0, "after a publish killed at step \(point): \(sync.stderr)")
      let show = try w.run("show", "fzf")
      #expect(show.status == 0)
      #expect(show.stdout == fzf || show.stdout == Data(newFzf.utf8))
      if show.stdout == Data(newFzf.utf8) { sawNew = true }
      if r.status == 0 { break }
      point += point < 20 ? 1 : 7
    }
    #expect(sawNew)
    try verifyClean(w)
  }

  @Test func fullDiskFailsClearlyAndLosesNothing() throws {
    let w = try CLIWorld()
    try w.setUp()
    let mnt = w.dir.file("small")
    try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
    let m = try runTsuku(["-t", "tmpfs", "-o", "size=96k", "tmpfs", mnt], env: [:], binary: "/bin/mount")
    try #require(m.status == 0, "mount: \(m.stderr)")
    defer { _ = try? runTsuku([mnt], env: [:], binary: "/bin/umount") }
    // Trust lives in the small home too: the sync must fail without damaging it.
    try FileManager.default.copyItem(atPath: w.dir.file("home/trust"), toPath: mnt + "/trust")
    try FileManager.default.copyItem(atPath: w.dir.file("home/config.toml"), toPath: mnt + "/config.toml")
    let r = try w.run("update-registry", env: ["TSUKU_HOME": mnt])
    #expect(r.status == 1)
    #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
    let v = try w.run("verify", "--offline", env: ["TSUKU_HOME": mnt])
    #expect(v.status == 0 || v.out.contains("0 corrupt"), "\(v.out) \(v.stderr)")
    #expect(try Home(path: mnt).loadTrust() != nil)
  }

  @Test func readOnlyHomeFailsClosedAndNeverSkipsVerification() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let ro = w.dir.file("ro")
    try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true)
    let m = try runTsuku(["--bind", w.dir.file("home"), ro], env: [:], binary: "/bin/mount")
    try #require(m.status == 0, "mount: \(m.stderr)")
    defer { _ = try? runTsuku([ro], env: [:], binary: "/bin/umount") }
    _ = try runTsuku(["-o", "remount,bind,ro", ro], env: [:], binary: "/bin/mount")
    // Reading a verified cache works; syncing fails with a clear error.
    var r = try w.run("show", "fzf", env: ["TSUKU_HOME": ro])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    r = try w.run("update-registry", "--force", env: ["TSUKU_HOME": ro])
    #expect(r.status == 1)
    #expect(r.stderr.contains("Read-only file system"), "\(r.stderr)")
    // A tampered cached blob is still refused, not served.
    _ = try runTsuku([ro], env: [:], binary: "/bin/umount")
    #expect(try tamperCachedBlob(cacheDir: w.dir.file("home/cache"), id: SHA256.hash(fzf)))
    _ = try runTsuku(["--bind", w.dir.file("home"), ro], env: [:], binary: "/bin/mount")
    _ = try runTsuku(["-o", "remount,bind,ro", ro], env: [:], binary: "/bin/mount")
    r = try w.run("show", "fzf", "--offline", env: ["TSUKU_HOME": ro])
    #expect(r.status == 4)
    #expect(r.stdout.isEmpty)
  }

  @Test func embeddedCriticalRecipesWithNoHomeAndNoSource() throws {
    let w = try CLIWorld()
    var r = try w.run("show", "cmake", env: ["TSUKU_SOURCES": "off"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/embedded/cmake.toml"))
    r = try w.run("plan", "cmake", "--platform", "linux-debian-amd64", "--offline")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/golden/embedded/cmake/v4.2.3-linux-debian-amd64.json"))
    r = try w.run("show", "fzf", "--offline")
    #expect(r.status == 5)
    #expect(r.stderr.hasPrefix("error: no source reachable and no cached copy of 'fzf'"))
  }

  @Test func offlineStaleAndMaxStaleMessagesThroughTheBinary() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    // Make the cache look 2 days old, then 9 days old.
    func age(_ days: Double) throws {
      let home = Home(path: w.dir.file("home"))
      var m = try #require(home.readCacheMeta())
      let t = Timestamp.format(Date().addingTimeInterval(-days * 86400))
      m.confirmed_at = t
      m.synced_at = t
      try home.writeCacheMeta(m)
    }
    try age(2)
    var r = try w.run("show", "fzf", env: ["TSUKU_SOURCES": "file:///nonexistent-source"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr == "warning: using cached recipe 'fzf' (last updated 2 days ago); run 'tsuku update-registry' when online\n")
    try age(9)
    r = try w.run("show", "fzf", "--offline")
    #expect(r.status == 5)
    #expect(r.stderr.hasPrefix("error: cached registry is 9 days old, more than the 8 days allowed"))
  }
}

/// Numeric environment values far outside their range are usage errors naming the variable and
/// the range (exit 64), never a trap: every duration and size derived from them fits an Int.
@Suite struct EnvironmentRangeTests {
  @Test(arguments: [
    ("TSUKU_API_TIMEOUT", "1e308", "expected a number of seconds above 0, at most 86400"),
    ("TSUKU_API_TIMEOUT", "99999999999999999999", "expected a number of seconds above 0, at most 86400"),
    ("TSUKU_RECIPE_CACHE_SIZE_LIMIT", "8796093022208G", "expected a size from 1MB to 10GB, e.g. 500MB"),
    ("TSUKU_RECIPE_CACHE_SIZE_LIMIT", "infG", "expected a size from 1MB to 10GB, e.g. 500MB"),
  ])
  func hugeNumericEnvironmentValuesExit64NamingTheVariable(_ name: String, _ value: String, _ range: String) throws {
    let w = try CLIWorld()
    // A remote source, so the transport's options are read (nothing is contacted before).
    let r = try w.run("update-registry", env: [name: value, "TSUKU_SOURCES": "https://127.0.0.1:1/registry"])
    #expect(r.status == 64, "\(r.stderr)")
    #expect(r.stderr == "error: invalid \(name) '\(value)': \(range)\n")
  }

  @Test func byteSizesPastAnIntAreRefusedNotTrapped() {
    #expect(ByteSize.parse("8796093022208G") == nil)
    #expect(ByteSize.parse("infG") == nil)
    #expect(ByteSize.parse("10GB") == 10 << 30)
  }
}
