import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The log's request cost end to end, through the built binary over SeaweedFS and a counting
/// proxy, when the log crosses a 256-entry tile boundary between two syncs: the sync to the new
/// index adds the checkpoint and two entries bundles (the level-1 tile is made from the full
/// bundle, not fetched), and a no-op sync stays one request.
@Suite struct LogTileBoundaryTests {
  typealias World = TransparencyLogTests.World

  /// Entries appended to the bucket's log directly (other registries' index versions, as far
  /// as this client knows), through the writer's own `TileAppend`, the checkpoint signed again
  /// with the log key: a log of any length without publishing each one.
  static func appendEntries(_ count: Int, to store: any ObjectStore, key: String) throws {
    let (_, cp) = try #require(try LogWriter.readCheckpoint(store))
    let entries = (0..<count).map { i in
      LogLeaf(
        indexVersion: 1, revocationVersion: 0, published: "2026-12-04T12:00:00Z",
        indexHash: SHA256.hash("another index \(cp.size + UInt64(i))"), changes: SHA256.hash("")
      ).bytes
    }
    let r = try TileAppend.append(oldSize: cp.size, entries: entries, source: StoreTiles(store))
    let next = Checkpoint(origin: cp.origin, size: r.size, rootHash: r.rootHash)
    let signer = try NoteSigner(name: cp.origin, key: try KeyFile.readPrivate(key))
    let note = SignedNote(text: next.text, signatures: [try signer.sign(next.text)])
    try store.apply(
      StoreChange(
        documents: try r.tiles.map { (try DocumentName.logFile("log/" + $0.0.path), Data($0.1)) }
          + [(.checkpoint, Data(note.serialized()))]))
  }

  @Test func aSyncAcrossATileBoundaryAddsThreeLogRequests() throws {
    let b = try TransparencyLogTests.BucketWorld(prefix: "tlog256")
    let (s, url, env) = (b.s, b.url, b.env)
    #expect(try s.publish("v1", to: url, env: env).status == 0)
    try Self.appendEntries(252, to: b.store, key: s.w.k("log"))
    #expect(try s.publish("v2", to: url, env: env).status == 0)
    let proxy = try b.initThroughProxy()
    var r: CommandResult
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.trustedLogSize() == 254)
    // Three more versions: the log goes from 254 entries to 257, across the tile boundary.
    for tag in ["v3", "v4", "v5"] { #expect(try s.publish(tag, to: url, env: env).status == 0) }
    try proxy.reset()
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.trustedLogSize() == 257)
    let log = proxy.requests().filter { $0.contains("/log/") }
    #expect(log.count == 3, "\(log)")
    #expect(log.contains { $0.contains("/log/checkpoint") } && log.contains { $0.contains("/log/tile/entries/000") }
      && log.contains { $0.contains("/log/tile/entries/001.p/1") }, "\(log)")
    try proxy.reset()
    r = try s.sync()
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try proxy.count() == 1, "\(proxy.requests())")
  }
}
