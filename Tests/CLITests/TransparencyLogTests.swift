import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The transparency log of a registry's signed indexes, end to end through the built binary:
/// every index a maintainer writes is appended (tiles and a checkpoint signed by the root's
/// `log` keys); a client refuses a fork, a rolled-back or truncated log and an index the log
/// does not hold, with exit 4 and both checkpoints named.
@Suite struct TransparencyLogTests {
  static let sample = checkout + "/registry-index/source"

  /// A registry in a directory with a log, published once, and a home that synced it.
  struct World {
    let w: CLIWorld
    var store: String { w.dir.file("store") }
    var logEnv: [String: String] { ["TSUKU_LOG_KEY": w.k("log")] }

    init(store url: String? = nil, env: [String: String] = [:]) throws {
      w = try CLIWorld()
      try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
      for role in ["root", "index", "revocation", "log"] {
        #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0)
      }
      let r = try runTsuku(
        [
          "registry", "init", "--to", url ?? w.store, "--root-key", w.k("root") + ".pub", "--index-key",
          w.k("index") + ".pub", "--revocation-key", w.k("revocation") + ".pub", "--log-key", w.k("log") + ".pub",
          "--log-origin", "example.test/registry", "--sign", w.k("root"),
        ], env: w.env.merging(env) { $1 }, binary: w.bin)
      try #require(r.status == 0, "\(r.stderr)")
    }

    /// A publish of the sample with one line added to fzf (`tag` makes each one new).
    @discardableResult
    func publish(_ tag: String, to url: String? = nil, env: [String: String]? = nil) throws -> CommandResult {
      let recipes = w.dir.file("recipes-" + tag)
      if !FileManager.default.fileExists(atPath: recipes) {
        try FileManager.default.copyItem(atPath: sample + "/recipes", toPath: recipes)
        let fzf = recipes + "/f/fzf.toml"
        try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# \(tag)\n").write(toFile: fzf, atomically: true, encoding: .utf8)
      }
      return try runTsuku(
        [
          "registry", "publish", "--recipes", recipes, "--critical", sample + "/embedded", "--golden", sample + "/golden",
          "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--allow-removals", "--to", url ?? store,
        ], env: w.env.merging(env ?? logEnv) { $1 }, binary: w.bin)
    }

    func initHome(source: String? = nil) throws {
      let r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", source ?? store)
      try #require(r.status == 0, "\(r.stderr)")
    }

    func sync() throws -> CommandResult { try w.run("update-registry") }

    func checkpoint(_ dir: String? = nil) throws -> Checkpoint {
      let note = try SignedNote.parse([UInt8](try #require(FileManager.default.contents(atPath: (dir ?? store) + "/log/checkpoint"))))
      return try Checkpoint.parse(note.text)
    }

    func trustedLogSize() throws -> UInt64? {
      let data = try #require(FileManager.default.contents(atPath: w.dir.file("home/trust/state.json")))
      return try JSONDecoder().decode(TrustState.self, from: data).log_size
    }

    func copyStore(to name: String) throws -> String {
      let dst = w.dir.file(name)
      try FileManager.default.copyItem(atPath: store, toPath: dst)
      return dst
    }

    /// Puts `dir` where the client's source is (the store itself moved aside).
    func serve(_ dir: String, keeping name: String) throws {
      try FileManager.default.moveItem(atPath: store, toPath: w.dir.file(name))
      try FileManager.default.copyItem(atPath: dir, toPath: store)
    }
  }

  /// A World whose registry (with a log) lives in a fresh SeaweedFS bucket, and what the tests
  /// over it need: the URL, the publishing environment (log key and bucket credentials).
  struct BucketWorld {
    let s: World
    let server: S3TestServer
    let bucket: String
    var url: String { "s3://\(bucket)/reg?endpoint=\(server.endpoint)&region=us-east-1" }
    static let admin = [
      "TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID,
      "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey,
    ]
    var env: [String: String] { s.logEnv.merging(Self.admin) { $1 } }
    var store: S3Store { server.store(bucket: bucket, prefix: "reg") }

    /// Skips the test (cancelled) when SeaweedFS cannot be installed here.
    init(prefix: String) throws {
      do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
      bucket = try server.makeBucket(prefix: prefix)
      s = try World(store: "s3://\(bucket)/reg?endpoint=\(server.endpoint)&region=us-east-1", env: Self.admin)
    }

    /// The home trusts the bucket's root and reads the bucket through a counting proxy.
    func initThroughProxy() throws -> CountingProxy {
      let root = s.w.dir.file("root.json")
      try #require(try store.readDocument(.root(1), maxSize: 1 << 20)).write(to: URL(fileURLWithPath: root))
      let proxy = try CountingProxy(upstream: server.endpoint)
      let r = try s.w.run("init", "--root", root, "--source", proxy.endpoint + "/" + bucket + "/reg")
      try #require(r.status == 0, "\(r.stderr)")
      return proxy
    }
  }

  @Test func everyPublishIsLoggedAndASyncChecksIt() throws {
    let s = try World()
    #expect(try s.publish("v1").status == 0)
    #expect(try s.checkpoint().size == 1)
    try s.initHome()
    var r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.trustedLogSize() == 1)
    #expect(try s.publish("v2").status == 0)
    #expect(try s.checkpoint().size == 2)
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.trustedLogSize() == 2)
    // The entry names the index.json bytes; the change list names fzf's new hash.
    let entries = try #require(FileManager.default.contents(atPath: s.store + "/log/tile/entries/000.p/2"))
    let leaf = try LogLeaf.parse(try EntryBundle.decode([UInt8](entries), count: 2, what: "bundle")[1], what: "leaf")
    #expect(leaf.indexHash == SHA256.hash(try #require(FileManager.default.contents(atPath: s.store + "/index.json"))))
    #expect(leaf.indexVersion == 2)
    let changes = try ChangeList.parse(
      try #require(FileManager.default.contents(atPath: s.store + "/log/changes/" + leaf.changes.hex)), what: "changes")
    #expect(changes.lines.filter { $0.name == "fzf" }.map(\.added).sorted { !$0 && $1 } == [false, true])
    // Without the log key, an index would go unlogged: refused, nothing written.
    let before = FileManager.default.contents(atPath: s.store + "/index.json")
    r = try s.publish("v3", env: ["TSUKU_LOG_KEY": ""])
    #expect(r.status == 64, "\(r.stderr)")
    #expect(r.stderr.contains("TSUKU_LOG_KEY"), "\(r.stderr)")
    #expect(FileManager.default.contents(atPath: s.store + "/index.json") == before)
  }

  /// A holder of the index and log keys signs a second history for one victim: a copy of the
  /// store at version 2 with its own versions 3 and 4. A client that trusted the real log at
  /// version 3 is served the fork: refused, naming both checkpoints.
  @Test func splitViewIsRefused() throws {
    let s = try World()
    #expect(try s.publish("v1").status == 0)
    #expect(try s.publish("v2").status == 0)
    let fork = try s.copyStore(to: "fork")
    #expect(try s.publish("v3").status == 0)
    try s.initHome()
    #expect(try s.sync().status == 0)
    let trusted = try s.checkpoint()
    #expect(try s.publish("fork3", to: fork).status == 0)
    #expect(try s.publish("fork4", to: fork).status == 0)
    let forked = try s.checkpoint(fork)
    try s.serve(fork, keeping: "real")
    let r = try s.sync()
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("forked"), "\(r.stderr)")
    #expect(r.stderr.contains(trusted.description) && r.stderr.contains(forked.description), "\(r.stderr)")
    #expect(try s.trustedLogSize() == 3)
  }

  /// A new index over the log's older checkpoint (the log rolled back to size 2 after this home
  /// trusted size 3): refused.
  @Test func rolledBackLogIsRefused() throws {
    let s = try World()
    #expect(try s.publish("v1").status == 0)
    #expect(try s.publish("v2").status == 0)
    let old = try #require(FileManager.default.contents(atPath: s.store + "/log/checkpoint"))
    #expect(try s.publish("v3").status == 0)
    try s.initHome()
    #expect(try s.sync().status == 0)
    #expect(try s.publish("v4").status == 0)
    try old.write(to: URL(fileURLWithPath: s.store + "/log/checkpoint"))
    let r = try s.sync()
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("rolled back or truncated") && r.stderr.contains("size 2 root") && r.stderr.contains("size 3 root"), "\(r.stderr)")
    #expect(try s.trustedLogSize() == 3)
  }

  /// The log started again (a holder of the log key wrote a fresh one holding only the new
  /// index): shorter than the trusted one, refused.
  @Test func truncatedLogIsRefused() throws {
    let s = try World()
    for v in ["v1", "v2", "v3"] { #expect(try s.publish(v).status == 0) }
    try s.initHome()
    #expect(try s.sync().status == 0)
    try FileManager.default.removeItem(atPath: s.store + "/log")
    #expect(try s.publish("v4").status == 0)
    #expect(try s.checkpoint().size == 1)
    let r = try s.sync()
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("rolled back or truncated") && r.stderr.contains("size 1 root") && r.stderr.contains("size 3 root"), "\(r.stderr)")
  }

  /// A properly signed index the log does not hold, served beside a sound log whose newest
  /// entry is another index; then the same with that entry swapped for one naming the served
  /// index (its tiles then no longer give the checkpoint's root). Both refused.
  @Test func inclusionProofForAnotherLeafIsRefused() throws {
    let s = try World()
    #expect(try s.publish("v1").status == 0)
    #expect(try s.publish("v2").status == 0)
    try s.initHome()
    #expect(try s.sync().status == 0)
    let other = try s.copyStore(to: "other")
    #expect(try s.publish("v3").status == 0)
    #expect(try s.publish("v3-other", to: other).status == 0)
    // The store gets the other index's blobs too: only the log tells the two indexes apart.
    let cp = Process()
    cp.executableURL = URL(fileURLWithPath: "/bin/cp")
    cp.arguments = ["-rn", other + "/objects/.", s.store + "/objects/"]
    try cp.run()
    cp.waitUntilExit()
    let otherIndex = try #require(FileManager.default.contents(atPath: other + "/index.json"))
    let realIndex = try #require(FileManager.default.contents(atPath: s.store + "/index.json"))
    try otherIndex.write(to: URL(fileURLWithPath: s.store + "/index.json"))
    var r = try s.sync()
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("is not in its transparency log"), "\(r.stderr)")
    // The entry swapped in: the log's own bundle now names the served index.
    let bundle = s.store + "/log/tile/entries/000.p/3"
    let otherBundle = try #require(FileManager.default.contents(atPath: other + "/log/tile/entries/000.p/3"))
    let realBundle = try #require(FileManager.default.contents(atPath: bundle))
    try otherBundle.write(to: URL(fileURLWithPath: bundle))
    r = try s.sync()
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("do not give the root of its checkpoint"), "\(r.stderr)")
    #expect(try s.trustedLogSize() == 2)
    // The real index back: accepted.
    try realIndex.write(to: URL(fileURLWithPath: s.store + "/index.json"))
    try realBundle.write(to: URL(fileURLWithPath: bundle))
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.trustedLogSize() == 3)
  }
}
