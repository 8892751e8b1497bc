import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The write side of the transparency log under races, crashes and forgeries, over a
/// directory and a real bucket (SeaweedFS): a witness's write-back is a compare-and-swap on the
/// checkpoint it read; a publish refuses to extend a checkpoint that does not verify; a
/// publish killed between its tiles and its checkpoint leaves clients working and converges
/// when run again; partial tiles a full tile supersedes are removed, and a reader of an older
/// checkpoint falls back to the full tile.
@Suite struct LogWritePathTests {
  static let sample = checkout + "/registry-index/source"

  /// A registry with a log in a directory (`bucket` false) or in a fresh SeaweedFS bucket.
  struct LogWorld {
    let s: TransparencyLogTests.World
    let url: String
    let server: S3TestServer?
    let bucket: String?
    var w: CLIWorld { s.w }
    var admin: [String: String] {
      server == nil
        ? [:]
        : ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    }
    var env: [String: String] { s.logEnv.merging(admin) { $1 } }

    init(bucket useBucket: Bool) throws {
      if useBucket {
        let server: S3TestServer
        do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
        let name = try server.makeBucket(prefix: "logwrite")
        let url = "s3://\(name)/reg?endpoint=\(server.endpoint)&region=us-east-1"
        let admin = [
          "TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey,
        ]
        s = try TransparencyLogTests.World(store: url, env: admin)
        (self.url, self.server, self.bucket) = (url, server, name)
      } else {
        s = try TransparencyLogTests.World()
        (url, server, bucket) = ("file://" + s.w.dir.file("store"), nil, nil)
      }
    }

    /// The store, opened as the commands open it (with write credentials).
    func store() throws -> any ObjectStore {
      if let server, let bucket { return server.store(bucket: bucket, prefix: "reg") }
      return DirectoryStore(path: w.dir.file("store"))
    }

    func publish(_ tag: String, extra: [String] = [], env more: [String: String] = [:]) throws -> CommandResult {
      let recipes = w.dir.file("recipes-" + tag)
      if !FileManager.default.fileExists(atPath: recipes) {
        try FileManager.default.copyItem(atPath: sample + "/recipes", toPath: recipes)
        let fzf = recipes + "/f/fzf.toml"
        try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# \(tag)\n").write(toFile: fzf, atomically: true, encoding: .utf8)
      }
      return try run(
        [
          "registry", "publish", "--recipes", recipes, "--critical", sample + "/embedded", "--golden", sample + "/golden",
          "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--allow-removals", "--to", url,
        ] + extra, env: more)
    }

    func run(_ args: [String], env more: [String: String] = [:]) throws -> CommandResult {
      try runTsuku(args, env: w.env.merging(env) { $1 }.merging(more) { $1 }, binary: w.bin, killAfter: 180)
    }

    func root() throws -> TrustedRoot {
      let bytes = try #require(try store().readDocument(.root(1), maxSize: 1 << 20))
      return try TrustedRoot(anchor: bytes, what: "root")
    }

    func checkpointBytes() throws -> Data { try #require(try store().readDocument(.checkpoint, maxSize: 1 << 16)) }

    func checkpoint() throws -> Checkpoint { try Checkpoint.parse(try SignedNote.parse([UInt8](try checkpointBytes())).text) }

    /// A home that trusts the store's root and reads from it.
    func initHome(_ name: String = "home") throws {
      try (try store().readDocument(.root(1), maxSize: 1 << 20))!.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
      let r = try run(["init", "--root", w.dir.file("root.json"), "--source", url], env: ["TSUKU_HOME": w.dir.file(name)])
      try #require(r.status == 0, "\(r.stderr)")
    }

    func sync(_ name: String = "home") throws -> CommandResult {
      try run(["update-registry"], env: ["TSUKU_HOME": w.dir.file(name)])
    }

    func trustedLogSize(_ name: String = "home") throws -> UInt64? {
      let data = try #require(FileManager.default.contents(atPath: w.dir.file(name + "/trust/state.json")))
      return try JSONDecoder().decode(TrustState.self, from: data).log_size
    }

    func witnessKey(_ name: String) throws {
      let r = try run(["registry", "witness", "keygen", "--name", name, "--out", w.k(name)])
      try #require(r.status == 0, "\(r.stderr)")
    }

    func witness(_ name: String) throws -> CommandResult {
      try run(
        [
          "registry", "witness", "--log", url, "--key", w.k(name), "--state", w.dir.file("state-" + name), "--root",
          w.dir.file("root.json"),
        ])
    }
  }

  // MARK: - 1. the witness's write-back is a compare-and-swap on the checkpoint

  /// A witness reads the checkpoint and cosigns it; a publish appends to the log before the
  /// witness writes back. The witness's write is refused (its checkpoint moved): the publish's
  /// longer checkpoint survives, clients follow it, and the witness run again cosigns it.
  func witnessLosesToAPublish(bucket: Bool) throws {
    let x = try LogWorld(bucket: bucket)
    #expect(try x.publish("v1").status == 0)
    try x.initHome()
    try x.witnessKey("witness-a")
    let store = try x.store()
    let read = try x.checkpointBytes()
    let witness = Witness(
      signer: try CosignatureSigner(name: "witness-a", key: try KeyFile.readPrivate(x.w.k("witness-a"))),
      stateDir: x.w.dir.file("state-witness-a"))
    let cosigned = try witness.cosign(
      [UInt8](read), root: try x.root().payload, tiles: StoreTiles(store), url: x.url, time: UInt64(Date().timeIntervalSince1970))
    // The publish gets in between the witness's read and its write.
    #expect(try x.publish("v2").status == 0)
    let published = try x.checkpointBytes()
    #expect(try x.checkpoint().size == 2)
    do {
      try Witness.writeBack(Data(cosigned.note.serialized()), over: read, to: store, message: "witness")
      Issue.record("a write-back over a checkpoint that moved went through")
    } catch let e as TsukuError {
      #expect(e.code == .conflict)
      #expect(e.message.contains("log/checkpoint of '") && e.message.contains("moved") && e.message.contains("run it again"), "\(e.message)")
      #expect(!e.message.contains("\n"))
    }
    // Never a lost update: the publish's checkpoint is the store's, byte for byte.
    #expect(try x.checkpointBytes() == published)
    var r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 2)
    // The witness run again cosigns the new checkpoint, consistent with the one it saw.
    r = try x.witness("witness-a")
    #expect(r.status == 0, "\(r.stderr)")
    let note = try SignedNote.parse([UInt8](try x.checkpointBytes()))
    #expect(try Checkpoint.parse(note.text).size == 2)
    #expect(note.verifiedCosigners([witness.signer.verifier]).count == 1)

    // Two witnesses racing: the second one's write over the checkpoint the first replaced is
    // refused, so the first one's cosignature is never lost.
    try x.witnessKey("witness-b")
    let readB = try x.checkpointBytes()
    let b = Witness(
      signer: try CosignatureSigner(name: "witness-b", key: try KeyFile.readPrivate(x.w.k("witness-b"))),
      stateDir: x.w.dir.file("state-witness-b"))
    let cosignedB = try b.cosign(
      [UInt8](readB), root: try x.root().payload, tiles: StoreTiles(store), url: x.url, time: UInt64(Date().timeIntervalSince1970))
    #expect(try x.publish("v3").status == 0)
    #expect(try x.witness("witness-a").status == 0)
    let held = try x.checkpointBytes()
    #expect(throws: TsukuError.self) {
      try Witness.writeBack(Data(cosignedB.note.serialized()), over: readB, to: store, message: "witness b")
    }
    #expect(try x.checkpointBytes() == held)
  }

  @Test func witnessRacingAPublishOverADirectoryNeverLosesTheLog() throws {
    try witnessLosesToAPublish(bucket: false)
  }

  @Test func witnessRacingAPublishOverSeaweedFSNeverLosesTheLog() throws {
    try witnessLosesToAPublish(bucket: true)
  }

  /// The witness and publishes run at once, as processes: whatever the interleaving, the
  /// store's checkpoint ends with every publish in it, and each witness run either cosigned or
  /// said the checkpoint moved.
  @Test func witnessAndPublishesRunConcurrentlyOverSeaweedFS() throws {
    let x = try LogWorld(bucket: true)
    #expect(try x.publish("c0").status == 0)
    try x.initHome()
    try x.witnessKey("witness-a")
    // The witness, again and again in the background until the publishes are done.
    let q = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    let cmd = [x.w.bin, "registry", "witness", "--log", x.url, "--key", x.w.k("witness-a"), "--state",
      x.w.dir.file("state-witness-a"), "--root", x.w.dir.file("root.json")].map(q).joined(separator: " ")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    let done = x.w.dir.file("publishes-done")
    p.arguments = ["-c", "while [ ! -e \(q(done)) ]; do \(cmd); echo \"rc=$?\" >&2; done"]
    p.environment = x.w.env.merging(x.env) { $1 }.merging(["PATH": "/usr/bin:/bin"]) { $1 }
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    for k in 1...3 {
      let r = try x.publish("c\(k)")
      #expect(r.status == 0, "\(r.stderr)")
    }
    FileManager.default.createFile(atPath: done, contents: Data())
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let codes = text.split(separator: "\n").filter { $0.hasPrefix("rc=") }
    #expect(codes.count >= 1, "\(text)")
    for line in text.split(separator: "\n") where !line.hasPrefix("rc=") && !line.hasPrefix("cosigned ") && !line.isEmpty {
      #expect(line.contains("moved") || line.contains("moving") || line.hasPrefix("  "), "\(line) in \(text)")
    }
    // Every run that succeeded cosigned a checkpoint the log really had at some point.
    #expect(text.contains("cosigned size "), "\(text)")
    #expect(codes.allSatisfy { $0 == "rc=0" || $0 == "rc=1" }, "\(text)")
    #expect(try x.checkpoint().size == 4)
    let r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 4)
  }

  // MARK: - 2. a checkpoint that does not verify is never extended

  /// An attacker with write access to the bucket (not the log key) replaces the checkpoint with
  /// one of its own: the next publish refuses to extend it (exit 4, naming it) and writes nothing.
  @Test func forgedCheckpointIsRefusedByTheNextPublish() throws {
    let x = try LogWorld(bucket: false)
    #expect(try x.publish("v1").status == 0)
    #expect(try x.publish("v2").status == 0)
    let real = try x.checkpoint()
    let index = try x.store().readDocument(.index, maxSize: 1 << 24)
    // Signed by a key of the attacker's, under the log's own name.
    let forged = Checkpoint(origin: real.origin, size: 5, rootHash: [UInt8](repeating: 7, count: 32))
    let attacker = try NoteSigner(name: real.origin, key: try SigningKey.generate())
    let note = SignedNote(text: forged.text, signatures: [try attacker.sign(forged.text)])
    try DirectoryStore(path: x.w.dir.file("store")).apply(StoreChange(documents: [(.checkpoint, Data(note.serialized()))]))
    var r = try x.publish("v3")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("(\(forged)) has 0 valid log signatures of 1 required by root version 1: refusing to extend it"), "\(r.stderr)")
    #expect(try x.store().readDocument(.index, maxSize: 1 << 24) == index)
    #expect(try x.checkpoint() == forged)

    // Signed by the real log key, but over a tree the tiles do not give: refused as well.
    let logKey = try NoteSigner(name: real.origin, key: try KeyFile.readPrivate(x.w.k("log")))
    let lying = Checkpoint(origin: real.origin, size: real.size, rootHash: [UInt8](repeating: 9, count: 32))
    try DirectoryStore(path: x.w.dir.file("store")).apply(
      StoreChange(documents: [(.checkpoint, Data(SignedNote(text: lying.text, signatures: [try logKey.sign(lying.text)]).serialized()))]))
    r = try x.publish("v3")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("do not give the root of its checkpoint (\(lying)): refusing to extend it"), "\(r.stderr)")
    #expect(try x.store().readDocument(.index, maxSize: 1 << 24) == index)
  }

  // MARK: - 3. a publish killed between its tiles and its checkpoint

  /// `publish --staged` killed right after its write-once log files went to the bucket, before
  /// the checkpoint and index.json: clients keep working on the old checkpoint; the same
  /// command run again reuses the very tiles it left (the same entry) and converges. A killed
  /// publish followed by another one: the half-written entry is kept in the log, ahead of the
  /// new one, and everything verifies.
  @Test func publishKilledAfterItsTilesOverSeaweedFSConverges() throws {
    let x = try LogWorld(bucket: true)
    #expect(try x.publish("v1").status == 0)
    try x.initHome()
    #expect(try x.sync().status == 0)
    let staged = x.w.dir.file("staged.json")
    var r = try x.publish("v2", extra: ["--stage", staged])
    try #require(r.status == 0, "\(r.stderr)")
    let crash = ["TSUKU_TEST_CRASH_AT": "1", "TSUKU_TEST_CRASH_LABEL": "s3: wrote the log files"]
    r = try x.run(["registry", "publish", "--staged", staged, "--to", x.url], env: crash)
    #expect(r.status == 128 + SIGKILL, "\(r.status) \(r.stderr)")
    #expect(r.stderr.contains("crash point 1: s3: wrote the log files"), "\(r.stderr)")
    let store = try x.store()
    let orphan = try #require(try store.readDocument(try .logFile("log/tile/entries/000.p/2"), maxSize: 1 << 20))
    #expect(try x.checkpoint().size == 1)
    // Clients work: the one that synced, and a new one.
    r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 1)
    try x.initHome("home-new")
    #expect(try x.sync("home-new").status == 0)
    // The same command again: the same entry, the same tiles.
    r = try x.run(["registry", "publish", "--staged", staged, "--to", x.url])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.checkpoint().size == 2)
    #expect(try store.readDocument(try .logFile("log/tile/entries/000.p/2"), maxSize: 1 << 20) == orphan)
    r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 2)

    // Killed again (v3), then another publish (v4) with another index.
    r = try x.publish("v3", extra: ["--stage", staged])
    try #require(r.status == 0, "\(r.stderr)")
    r = try x.run(["registry", "publish", "--staged", staged, "--to", x.url], env: crash)
    #expect(r.status == 128 + SIGKILL, "\(r.stderr)")
    #expect(try x.checkpoint().size == 2)
    r = try x.publish("v4")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.checkpoint().size == 4)
    let bundle = try #require(try store.readDocument(try .logFile("log/tile/entries/000.p/4"), maxSize: 1 << 20))
    let leaves = try EntryBundle.decode([UInt8](bundle), count: 4, what: "bundle").map { try LogLeaf.parse($0, what: "leaf") }
    let index = try #require(try store.readDocument(.index, maxSize: 1 << 24))
    #expect(leaves[3].indexHash == SHA256.hash(index))
    #expect(leaves[2].indexHash != leaves[3].indexHash)
    r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 4)
    // The exposure window reads every entry's change list, the kept one's included.
    r = try x.run(["registry", "log", "--name", "fzf", "--from", x.url, "--root", x.w.dir.file("root.json"), "--json"])
    #expect(r.status == 0, "\(r.stderr)")
  }

  /// Someone with write access plants an entries bundle past the checkpoint that does not
  /// extend the log (other entries before the new one): the next publish neither takes it up nor
  /// writes over it, and says which file to remove (exit 4, nothing written).
  @Test func aBundlePlantedPastTheCheckpointIsRefused() throws {
    let x = try LogWorld(bucket: false)
    #expect(try x.publish("v1").status == 0)
    #expect(try x.publish("v2").status == 0)
    let leaf = LogLeaf(
      indexVersion: 9, revocationVersion: 0, published: Timestamp.format(Date()), indexHash: SHA256.hash(Data("planted".utf8)),
      changes: SHA256.hash(Data()))
    let planted = try EntryBundle.encode([leaf.bytes, leaf.bytes, leaf.bytes])
    try DirectoryStore(path: x.w.dir.file("store")).apply(
      StoreChange(documents: [(try .logFile("log/tile/entries/000.p/3"), Data(planted))]))
    let index = try x.store().readDocument(.index, maxSize: 1 << 24)
    let r = try x.publish("v3")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("'log/tile/entries/000.p/3' in '") && r.stderr.contains("does not extend its log"), "\(r.stderr)")
    #expect(try x.store().readDocument(.index, maxSize: 1 << 24) == index)
    #expect(try x.checkpoint().size == 2)
  }

  // MARK: - 4. partial tiles superseded by a full tile

  /// A log one entry short of a full tile; the publish that fills it removes the 255 partial
  /// tiles of each level it completes, after its checkpoint. A reader of the older checkpoint
  /// (a client that read it just before, a CDN's copy) finds its partial tile gone and reads
  /// the full tile's prefix: it still verifies.
  @Test func partialTilesGoOnceTheFullTileIsWrittenAndOldReadersFallBack() throws {
    let x = try LogWorld(bucket: false)
    #expect(try x.publish("v1").status == 0)
    try x.initHome()
    // 254 more entries (index hashes of no index), signed with the real log key: size 255.
    let store = try x.store()
    let cp = try x.checkpoint()
    let fillers = (0..<254).map { i in
      LogLeaf(
        indexVersion: 1, revocationVersion: 0, published: Timestamp.format(Date()),
        indexHash: SHA256.hash(Data("filler \(i)".utf8)), changes: SHA256.hash(Data())).bytes
    }
    let appended = try TileAppend.append(oldSize: cp.size, entries: fillers, source: StoreTiles(store))
    let grown = Checkpoint(origin: cp.origin, size: appended.size, rootHash: appended.rootHash)
    let signer = try NoteSigner(name: cp.origin, key: try KeyFile.readPrivate(x.w.k("log")))
    let oldNote = Data(SignedNote(text: grown.text, signatures: [try signer.sign(grown.text)]).serialized())
    try store.apply(
      StoreChange(
        documents: try appended.tiles.map { (try DocumentName.logFile("log/" + $0.0.path), Data($0.1)) } + [(.checkpoint, oldNote)]))
    let oldIndex = try #require(try store.readDocument(.index, maxSize: 1 << 24))
    var r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 255)
    let partials = ["log/tile/0/000.p/255", "log/tile/entries/000.p/255", "log/tile/0/000.p/1", "log/tile/entries/000.p/1"]
    for p in partials { #expect(try store.readDocument(try .logFile(p), maxSize: 1 << 20) != nil, "\(p)") }

    // The publish that fills tile 0: the full tiles are written, the partials removed.
    #expect(try x.publish("v2").status == 0)
    #expect(try x.checkpoint().size == 256)
    for p in partials { #expect(try store.readDocument(try .logFile(p), maxSize: 1 << 20) == nil, "\(p) still there") }
    #expect(try store.readDocument(try .logFile("log/tile/0/000"), maxSize: 1 << 20) != nil)
    #expect(try store.readDocument(try .logFile("log/tile/entries/000"), maxSize: 1 << 20) != nil)
    // The client that trusted size 255 moves on (its proof comes from the new tree's tiles).
    r = try x.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize() == 256)

    // The writer's own reader cuts the gone partial tile from the full one.
    let old = TileLog(source: StoreTiles(store), size: 255)
    #expect(try old.treeHash(size: 255) == grown.rootHash)
    // A new client served the old checkpoint and the old index (a stale CDN copy): its
    // partial tiles are gone, the full tiles' prefixes verify.
    let current = (try x.checkpointBytes(), try #require(try store.readDocument(.index, maxSize: 1 << 24)))
    try DirectoryStore(path: x.w.dir.file("store")).apply(StoreChange(documents: [(.checkpoint, oldNote), (.index, oldIndex)]))
    try x.initHome("home-stale")
    r = try x.sync("home-stale")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize("home-stale") == 255)
    try DirectoryStore(path: x.w.dir.file("store")).apply(StoreChange(documents: [(.checkpoint, current.0), (.index, current.1)]))
    r = try x.sync("home-stale")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.trustedLogSize("home-stale") == 256)
  }
}
