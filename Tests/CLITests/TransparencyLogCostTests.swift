import Foundation
import Store
import Sync
import Testing

import TestSupport

/// What the log costs a client and what it answers a responder: request counts over a real
/// bucket, the exposure window from the log alone, and write-once log files under a race.
@Suite struct TransparencyLogCostTests {
  typealias World = TransparencyLogTests.World

  /// Over SeaweedFS through a counting proxy: a sync that changes nothing stays one request
  /// (the conditional index.json, no log request); a sync to a new index adds at most three
  /// log requests (the checkpoint and tiles).
  @Test func aNoOpSyncStaysOneRequestAndANewIndexAddsAtMostThree() throws {
    let b = try TransparencyLogTests.BucketWorld(prefix: "tlog")
    let (s, url, env) = (b.s, b.url, b.env)
    #expect(try s.publish("v1", to: url, env: env).status == 0)
    let proxy = try b.initThroughProxy()
    var r: CommandResult
    #expect(try s.sync().status == 0)
    for tag in ["v2", "v3"] {
      #expect(try s.publish(tag, to: url, env: env).status == 0)
      try proxy.reset()
      r = try s.sync()
      #expect(r.status == 0, "\(r.stderr)")
      let log = proxy.requests().filter { $0.contains("/log/") }
      #expect(log.count >= 2 && log.count <= 3, "\(log)")
      #expect(log.contains { $0.contains("/log/checkpoint") }, "\(log)")
    }
    try proxy.reset()
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try proxy.count() == 1, "\(proxy.requests())")
  }

  /// `registry log --hash` and `--name` list, from the log alone, every index version that
  /// pinned the blob, with the window; `registry revoke` prints the window of what it revokes.
  @Test func theExposureWindowOfAHashComesFromTheLog() throws {
    let s = try World()
    let fzf = { (tag: String) in SHA256.hash(FileManager.default.contents(atPath: s.w.dir.file("recipes-\(tag)/f/fzf.toml"))!).hex }
    #expect(try s.publish("v1").status == 0)
    #expect(try s.publish("v2").status == 0)
    // Version 3 pins the same fzf: a re-sign (an entry with an empty change list).
    var r = try runTsuku(
      ["registry", "resign", "--key", s.w.k("index"), "--to", s.store], env: s.w.env.merging(s.logEnv) { $1 }, binary: s.w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.publish("v4").status == 0)
    // The answer is checked against a trusted root (here the registry's first, as --root).
    let root = s.store + "/root/1.root.json"
    r = try s.w.run("registry", "log", "--from", s.store, "--root", root, "--hash", fzf("v2"), "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let w = try JSONDecoder().decode(ExposureWindow.self, from: r.stdout)
    #expect(w.versions.map(\.index_version) == [2, 3])
    #expect(w.first_version == 2 && w.last_version == 3 && !w.still_pinned)
    r = try s.w.run("registry", "log", "--from", s.store, "--root", root, "--name", "fzf")
    #expect(r.status == 0 && r.out.contains("still pinned by index version 4"), "\(r.out) \(r.stderr)")
    r = try s.w.run("registry", "log", "--from", s.store, "--root", root, "--hash", String(repeating: "0", count: 64))
    #expect(r.status == 3, "\(r.out) \(r.stderr)")
    // Without a trusted root of this registry (the built-in one here), the store's own chain
    // does not answer for it.
    r = try s.w.run("registry", "log", "--from", s.store, "--hash", fzf("v2"))
    #expect(r.status == 4 && r.stderr.contains("its log is not this registry's"), "\(r.out) \(r.stderr)")
    r = try s.w.run("registry", "log", "--from", s.store, "--root", root, "--hash", String(repeating: "1", count: 64))
    #expect(r.status == 3, "\(r.out) \(r.stderr)")
    r = try runTsuku(
      ["registry", "revoke", fzf("v4"), "--reason", "compromised", "--key", s.w.k("revocation"), "--to", s.store],
      env: s.w.env.merging(s.logEnv) { $1 }, binary: s.w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("exposure window of \(fzf("v4").prefix(16))") && r.out.contains("still pinned by index version 4"), "\(r.out)")
  }

  /// Two publishers append at the same position: the log files the loser would write hold other
  /// bytes than the winner's, so the store refuses its change before its index.json, on a
  /// directory, a git repository and a bucket alike.
  @Test func aRaceLoserFailsOnTheLogBeforeItsIndex() throws {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let dir = try TemporaryDirectory(prefix: "tlog-race")
    let repo = try makeGitRepository(at: dir.file("r.git"), bare: true)
    let stores: [any ObjectStore] = [
      try DirectoryStore(path: dir.file("d")), try StoreURL.open("git+file://\(repo)?dir=store"),
      server.store(bucket: try server.makeBucket(prefix: "race"), prefix: "reg"),
    ]
    let tile = try #require(DocumentName(path: "log/tile/entries/000.p/1"))
    for store in stores {
      let winner = StoreChange(documents: [(tile, Data("winner".utf8)), (.checkpoint, Data("w".utf8)), (.index, Data("{}".utf8))])
      try store.apply(winner)
      // Applying the same again is fine: the write-once file holds these very bytes.
      try store.apply(winner)
      let loser = StoreChange(documents: [(tile, Data("loser".utf8)), (.checkpoint, Data("l".utf8)), (.index, Data("[]".utf8))])
      #expect(throws: TsukuError.self, "\(store.location)") { try store.apply(loser) }
      #expect(try store.readDocument(.index, maxSize: 100) == Data("{}".utf8), "\(store.location)")
      #expect(try store.readDocument(.checkpoint, maxSize: 100) == Data("w".utf8), "\(store.location)")
      #expect(try store.readDocument(tile, maxSize: 100) == Data("winner".utf8), "\(store.location)")
    }
  }

  /// `registry mirror` copies the log with the index: a home that trusted the origin's log
  /// syncs from the mirror; a mirror target whose log is not a prefix of the source's is refused.
  @Test func aMirrorCarriesTheLog() throws {
    let s = try World()
    #expect(try s.publish("v1").status == 0)
    try s.initHome()
    #expect(try s.sync().status == 0)
    #expect(try s.publish("v2").status == 0)
    let mirror = s.w.dir.file("mirror")
    var r = try s.w.run("registry", "mirror", "--from", s.store, "--to", mirror, "--root", s.store + "/root/1.root.json")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(FileManager.default.contents(atPath: mirror + "/log/checkpoint") == FileManager.default.contents(atPath: s.store + "/log/checkpoint"))
    r = try s.w.run("init", "--root", s.store + "/root/1.root.json", "--source", mirror)
    #expect(r.status == 0, "\(r.stderr)")
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.trustedLogSize() == 2)
    // A target holding a forked log.
    let fork = try s.copyStore(to: "fork-src")
    #expect(try s.publish("v3").status == 0)
    #expect(try s.publish("f3", to: fork).status == 0)
    r = try s.w.run("registry", "mirror", "--from", s.store, "--to", fork, "--root", s.store + "/root/1.root.json")
    #expect(r.status != 0 && r.stderr.contains("is not a prefix of the log"), "\(r.out) \(r.stderr)")
  }

  /// Only the log's own names are log documents: no traversal, no other folder.
  @Test func logPathsAreValidated() {
    for good in ["log/checkpoint", "log/tile/0/000", "log/tile/entries/x001/234.p/7", "log/changes/" + String(repeating: "ab", count: 32)] {
      #expect(DocumentName(path: good) != nil, "\(good)")
    }
    for bad in ["log/../index.json", "log/tile/0/../../x", "log/tile/8/000", "log/changes/ABCD", "log/tile/0/000.p/256", "log/x", "log/tile/0/0000"] {
      #expect(DocumentName(path: bad) == nil, "\(bad)")
    }
  }
}
