import Foundation
import Store
import Sync
import Testing

import TestSupport

/// What the client's log check reads from its source when it accepts a new index, counted
/// request by request through `LogVerifier`'s read function, over logs of every shape that
/// matters: within a tile, across a 256-entry tile boundary, past 65,536 entries (level-2
/// tiles) and across that boundary. The bound: a sync to a new index adds at most
/// three small requests; the check of a checkpoint already verified works from cached tiles.
@Suite struct LogRequestCountTests {
  /// A registry's `log/` files in memory, appended through `TileAppend` (the writer's own
  /// append), each state with its checkpoint signed by the root's log key.
  final class MemoryLog: @unchecked Sendable {
    let origin = "example.test/registry"
    let key: SigningKey
    let root: RootPayload
    var tiles = [Tile: [UInt8]]()
    var size: UInt64 = 0
    var note = Data()
    var version = 0

    init(key: SigningKey, root: RootPayload) { (self.key, self.root) = (key, root) }

    convenience init() throws {
      let key = try SigningKey.generate()
      self.init(
        key: key,
        root: RootPayload(
          version: 1, expires: Date().addingTimeInterval(365 * 86400), keys: [key.publicKey],
          roles: [.log: RoleKeys(keyids: [key.keyID], threshold: 1)], logOrigin: "example.test/registry"))
    }

    static func index(_ version: Int) -> Data { Data("index.json of version \(version)".utf8) }

    func append(_ entries: [[UInt8]]) throws {
      let r = try TileAppend.append(oldSize: size, entries: entries, source: self)
      for (t, bytes) in r.tiles { tiles[t] = bytes }
      size = r.size
      let text = Checkpoint(origin: origin, size: size, rootHash: r.rootHash).text
      note = Data(SignedNote(text: text, signatures: [try NoteSigner(name: origin, key: key).sign(text)]).serialized())
    }

    /// Other entries up to `size - 1`, then the entry of the next index version, the newest.
    func publish(at size: UInt64) throws {
      precondition(size > self.size)
      if size - 1 > self.size { try append((self.size..<size - 1).map { Array("another entry \($0)".utf8) }) }
      version += 1
      let leaf = LogLeaf(
        indexVersion: version, revocationVersion: 0, published: "2026-12-04T12:00:00Z",
        indexHash: SHA256.hash(Self.index(version)), changes: SHA256.hash("changes \(version)"))
      try append([leaf.bytes])
    }

    /// The file at `name` as a source serves it.
    func serve(_ name: DocumentName) -> Data? {
      if name == .checkpoint { return note }
      guard name.path.hasPrefix("log/"), let t = Tile(path: String(name.path.dropFirst(4))) else { return nil }
      return tiles[t].map { Data($0) }
    }
  }

  /// A log of 65,530 entries, built once: the tests grow copies of it.
  static let big: MemoryLog = {
    let log = try! MemoryLog()
    try! log.publish(at: 65_530)
    return log
  }()

  /// A home: its tile cache and the checkpoint it trusts.
  final class Home: @unchecked Sendable {
    let dir: TemporaryDirectory
    var trust = TrustState()
    init() throws { dir = try TemporaryDirectory(prefix: "logreq") }

    /// The log check of a sync to the log's newest index: the paths it read from the source.
    @discardableResult
    func sync(_ log: MemoryLog, serve: ((DocumentName) -> Data?)? = nil) throws -> [String] {
      var reads = [String]()
      let verifier = LogVerifier(url: "memory", cacheDir: dir.file("log")) { name, _ in
        reads.append(name.path)
        return (serve ?? log.serve)(name)
      }
      let cp = try #require(
        try verifier.verify(
          index: MemoryLog.index(log.version), version: log.version, root: log.root, trusted: trust, witnesses: { _, _ in }))
      #expect(cp.size == log.size)
      trust.log_size = cp.size
      trust.log_root = Data(cp.rootHash).base64EncodedString()
      return reads
    }
  }

  /// A client synced at `old`, then the log grew to `new` (the newest entry the new index):
  /// the log requests of its sync, for each shape; at most three (the checkpoint and two
  /// entries bundles) in every one, and exactly what the proofs cannot do without.
  @Test func aSyncToANewIndexAddsAtMostThreeLogRequests() throws {
    var log = try MemoryLog()
    // (old size, new size, the tiles the check must fetch besides the checkpoint)
    let cases: [(UInt64, UInt64, [String])] = [
      (10, 11, ["tile/entries/000.p/11"]),
      (11, 14, ["tile/entries/000.p/14"]),
      (255, 256, ["tile/entries/000"]),
      (256, 257, ["tile/entries/001.p/1"]),
      (400, 513, ["tile/entries/001", "tile/entries/002.p/1"]),  // across a 256 boundary
      (600, 700, ["tile/entries/002.p/188"]),
      (65_530, 65_537, ["tile/entries/255", "tile/entries/256.p/1"]),  // across 65,536: level 2 begins
      (70_000, 70_001, ["tile/entries/273.p/113"]),  // past 65,536
      (70_140, 70_146, ["tile/entries/273", "tile/entries/274.p/2"]),  // past 65,536, across 256
      (131_070, 131_073, ["tile/entries/511", "tile/entries/512.p/1"]),  // a second level-2 hash
    ]
    for (old, new, tiles) in cases {
      if old == 65_530 { log = MemoryLog(copying: Self.big, upTo: Self.big.size) }
      if log.size < old { try log.publish(at: old) }
      let home = try Home()
      try home.sync(log)
      try log.publish(at: new)
      let reads = try home.sync(log)
      #expect(reads.count <= 3, "\(old) -> \(new): \(reads)")
      #expect(reads.first == "log/checkpoint" && Set(reads) == Set(["log/checkpoint"] + tiles.map { "log/" + $0 }), "\(old) -> \(new): \(reads)")
      // The same checkpoint checked again (a retried sync, a check offline): from the cache.
      #expect(try home.sync(log, serve: { $0 == .checkpoint ? log.note : nil }) == ["log/checkpoint"], "\(old) -> \(new)")
    }
  }

  /// A client that syncs after every publish, across a tile boundary and across 65,536: the
  /// checkpoint and one entries bundle each time.
  @Test func aClientSyncingEveryVersionReadsOneTileEachTime() throws {
    for start: UInt64 in [250, 65_530] {
      let log = start == 65_530 ? MemoryLog(copying: Self.big, upTo: Self.big.size) : try MemoryLog()
      if log.size < start { try log.publish(at: start) }
      let home = try Home()
      try home.sync(log)
      for _ in 0..<12 {
        try log.publish(at: log.size + 1)
        let reads = try home.sync(log)
        #expect(reads.count == 2 && reads.first == "log/checkpoint", "\(log.size): \(reads)")
      }
      // The cache keeps one copy of each tile: the narrower copies a wider one replaced are gone.
      let cached = try FileManager.default.subpathsOfDirectory(atPath: home.dir.file("log/tile/entries"))
      #expect(!cached.contains { $0.hasSuffix(".p/\(start % 256)") }, "\(cached)")
    }
  }

  /// A client that fell more than a whole tile behind also needs the level-1 hashes of the
  /// tiles it skipped: one more request, never one per skipped tile.
  @Test func aClientAWholeTileBehindFetchesTheLevelOneTileOnce() throws {
    let log = try MemoryLog()
    try log.publish(at: 300)
    let home = try Home()
    try home.sync(log)
    try log.publish(at: 1_500)
    let reads = try home.sync(log)
    #expect(
      reads.count == 4
        && Set(reads) == ["log/checkpoint", "log/tile/1/000.p/5", "log/tile/entries/001", "log/tile/entries/005.p/220"],
      "\(reads)")
  }

  /// The tiles made locally prove nothing by themselves: a log forked before the trusted
  /// checkpoint and grown across the tile and level-2 boundaries, signed by the real log key,
  /// is refused; so is a rolled-back one; a damaged cached tile makes the check fail, never pass.
  @Test func aForkAcrossATileBoundaryIsRefusedWithMadeTiles() throws {
    for (old, new, forkedAt) in [(255, 257, 100), (65_530, 65_537, 65_280)] as [(UInt64, UInt64, UInt64)] {
      let real = old < 65_536 && old > 1_000 ? MemoryLog(copying: Self.big, upTo: Self.big.size) : try MemoryLog()
      if real.size < old { try real.publish(at: old) }
      let home = try Home()
      try home.sync(real)
      // The split view: the same key and index versions, the entries from `forkedAt` on
      // others, grown across the boundary and signed by the real log key.
      let fork = MemoryLog(copying: real, upTo: forkedAt)
      try fork.append((forkedAt..<old).map { Array("a forged entry \($0)".utf8) })
      try fork.publish(at: new)
      let e = #expect(throws: TsukuError.self) { try home.sync(fork) }
      #expect(e?.code == .integrity && e?.message.contains("forked") == true, "\(String(describing: e))")
      // The real log still syncs from the same cache.
      try real.publish(at: new)
      #expect(try home.sync(real).count <= 3)
    }
    // Rolled back: a smaller tree than the one trusted.
    let log = try MemoryLog()
    try log.publish(at: 300)
    let home = try Home()
    try home.sync(log)
    let short = MemoryLog(copying: log, upTo: log.size)
    try log.publish(at: 301)
    try home.sync(log)
    let e = #expect(throws: TsukuError.self) { try home.sync(short) }
    #expect(e?.message.contains("rolled back") == true, "\(String(describing: e))")
    // A cached level-1 tile damaged: the made tile does not give the signed root.
    try log.publish(at: 770)
    try home.sync(log)
    let level1 = home.dir.file("log/tile/1/000.p/3")
    var bytes = try #require(FileManager.default.contents(atPath: level1))
    bytes[0] ^= 1
    try bytes.write(to: URL(fileURLWithPath: level1))
    try log.publish(at: 800)
    #expect(throws: TsukuError.self) { try home.sync(log) }
  }
}

extension LogRequestCountTests.MemoryLog {
  /// The first `size` entries of `other`, with the same key, origin and index version, and a
  /// checkpoint of them: its tiles shared when `other` had that size or it is a multiple of 256,
  /// else appended again.
  convenience init(copying other: LogRequestCountTests.MemoryLog, upTo size: UInt64) {
    self.init(key: other.key, root: other.root)
    version = other.version
    if size % 256 != 0 && other.tiles[Tile(level: nil, index: size / 256, width: Int(size % 256))] == nil {
      let reader = TileLog(source: other, size: other.size)
      let entries = (0..<(size + 255) / 256).flatMap { try! reader.entries(tile: $0) }
      try! append(Array(entries.prefix(Int(size))))
      return
    }
    (tiles, self.size, note) = (other.tiles, size, other.note)
    if size < other.size {
      let text = Checkpoint(origin: origin, size: size, rootHash: try! TileLog(source: self, size: size).treeHash(size: size)).text
      note = Data(SignedNote(text: text, signatures: [try! NoteSigner(name: origin, key: key).sign(text)]).serialized())
    }
  }
}

extension LogRequestCountTests.MemoryLog: TileSource {
  func readTile(_ tile: Tile) throws -> [UInt8] {
    guard let t = tiles[tile] else { throw TsukuError(.notFound, "no tile \(tile.path)") }
    return t
  }
}
