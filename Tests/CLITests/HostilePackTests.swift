import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Crafted and damaged packs against the built binary: served by a hostile source over the
/// real transport, or left in the cache. Each run is a child process, so a trap or a wild
/// read shows as a signal in its status, not as the end of the test run.
@Suite struct HostilePackTests {
  /// The entry offsets a hostile pack table carries, by name: -2^40 (a read far below any
  /// mapping) and Int.min (the bounds check's subtraction overflowed).
  static let offsets: [String: UInt64] = ["negative": 0xFFFF_FF00_0000_0000, "overflowing": 0x8000_0000_0000_0000]

  /// A registry published with packs, and a home that trusts it (not yet synced).
  static func world() throws -> CLIWorld {
    let w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { try w.run("registry", "keygen", "--out", w.k(role)) }
    var r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run(
      "registry", "publish", "--recipes", checkout + "/registry-index/source/recipes", "--critical",
      checkout + "/registry-index/source/embedded", "--key", w.k("index"), "--to", w.store, "--packs", "always")
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    return w
  }

  /// `bytes` of a pack with entry 1's offset replaced by `offset`.
  static func crafted(_ bytes: Data, offset: UInt64) -> Data {
    var b = [UInt8](bytes)
    let at = 12 + 44 + 32
    withUnsafeBytes(of: offset.bigEndian) { for k in 0..<8 { b[at + k] = $0[k] } }
    return Data(b)
  }

  /// `bytes` of a pack with its first two table entries swapped (ids out of order).
  static func unsorted(_ bytes: Data) -> Data {
    var b = [UInt8](bytes)
    let first = Array(b[12..<56])
    b.replaceSubrange(12..<56, with: b[56..<100])
    b.replaceSubrange(56..<100, with: first)
    return Data(b)
  }

  static func cachedPacks(_ w: CLIWorld) -> [String] {
    let dir = w.dir.file("home/cache/packs")
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".pack") }.map {
      dir + "/" + $0
    }
  }

  /// True when the run died of a signal (a trap is signal 4, which an exit status alone
  /// cannot tell from exit 4): the runtime's backtracer said so on stderr.
  static func crashed(_ r: CommandResult) -> Bool {
    r.stderr.contains("*** Signal") || r.stderr.contains("Swift runtime failure")
  }

  static func audit(_ w: CLIWorld) -> [AuditEvent] { AuditLog(home: Home(path: w.dir.file("home"))).read() }

  static func recipeHash(_ w: CLIWorld, _ name: String) throws -> String {
    let r = try w.run("info", name, "--json", "--offline")
    let info = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
    return try #require((info?["recipe"] as? [String: Any])?["sha256"] as? String)
  }

  /// Serves the directory store of `w` over loopback HTTP, every pack with `craft` applied.
  static func serve(_ w: CLIWorld, craft: @escaping @Sendable (Data) -> Data) throws -> LoopbackServer {
    let root = w.dir.file("store")
    return try LoopbackServer { req in
      let path = root + (req.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? req.path)
      guard !path.contains(".."), let d = FileManager.default.contents(atPath: path) else { return .respond(404) }
      return .respond(200, body: d.starts(with: Pack.magic) && d.count >= 100 ? craft(d) : d)
    }
  }

  @Test(
    "attack: a streamed pack of the declared size with a crafted offset is refused, and the next source serves",
    arguments: ["negative", "overflowing"])
  func aStreamedPackWithACraftedOffsetIsRefused(kind: String) throws {
    let w = try Self.world()
    let offset = Self.offsets[kind]!
    let server = try Self.serve(w) { Self.crafted($0, offset: offset) }
    // The hostile source alone: refused (exit 4) by the table check run as the last byte
    // arrives or by the pack's own hash, whichever reports first; never a signal. The check
    // runs on another thread while the transfer ends, so a run may finish before it reads the
    // table: several runs, so that a check that reads outside the pack is caught.
    var r = try w.run("update-registry", env: ["TSUKU_SOURCES": server.url])
    for _ in 0..<8 {
      r = try w.run("update-registry", env: ["TSUKU_SOURCES": server.url])
      #expect(r.status == 4 && !Self.crashed(r), "status \(r.status): \(r.stderr)")
      #expect(r.stderr.contains("from '\(server.url)'"), "\(r.stderr)")
      if r.status != 4 || Self.crashed(r) { break }
    }
    #expect(Self.cachedPacks(w).isEmpty)
    // Hostile first, honest second: the honest source serves the sync.
    r = try w.run("update-registry", env: ["TSUKU_SOURCES": "\(server.url),\(w.store)"])
    #expect(r.status == 0 && !Self.crashed(r), "status \(r.status): \(r.stderr)")
    #expect(try w.run("show", "fzf", "--offline").status == 0)
    #expect(try w.run("verify", "--offline").status == 0)
    #expect(Self.audit(w).contains { $0.event == "verify_failure" && $0.source == server.url })
  }

  @Test(
    "attack: a cached pack with a crafted offset neither traps nor blocks the next sync",
    arguments: ["negative", "overflowing"])
  func aCachedPackWithACraftedOffsetIsSetAside(kind: String) throws {
    let w = try Self.world()
    #expect(try w.run("update-registry").status == 0)
    let offset = Self.offsets[kind]!
    try expectSetAsideOnRevocation(w) { Self.crafted($0, offset: offset) }
  }

  @Test(
    "fault: a cached pack with an unsorted table neither blocks a sync nor its revocation; the audit log names the cache"
  )
  func anUnsortedCachedPackIsSetAsideAndTheRevocationApplied() throws {
    let w = try Self.world()
    #expect(try w.run("update-registry").status == 0)
    try expectSetAsideOnRevocation(w, Self.unsorted)
  }

  /// Damages every cached pack with `damage`, revokes fzf at the source, syncs: the sync
  /// succeeds, sets the packs aside (audit event naming the cache, none naming the source),
  /// applies the revocation and fetches again what the packs held.
  func expectSetAsideOnRevocation(_ w: CLIWorld, _ damage: (Data) -> Data) throws {
    let hash = try Self.recipeHash(w, "fzf")
    let packs = Self.cachedPacks(w)
    #expect(!packs.isEmpty)
    for p in packs { try damage(try Data(contentsOf: URL(fileURLWithPath: p))).write(to: URL(fileURLWithPath: p)) }
    var r = try w.run(
      "registry", "revoke", hash, "--reason", "replaced upstream", "--key", w.k("revocation"), "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("update-registry")
    #expect(r.status == 0 && !Self.crashed(r), "status \(r.status): \(r.stderr)")
    #expect(r.stderr.contains("is malformed"), "\(r.stderr)")
    #expect(r.stderr.contains("packs/damaged/"), "\(r.stderr)")
    r = try w.run("show", "fzf", "--offline")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("revoked: replaced upstream"), "\(r.stderr)")
    #expect(try w.run("show", "jq", "--offline").status == 0)
    let failures = Self.audit(w).filter { $0.event == "verify_failure" }
    #expect(failures.contains { $0.source == w.dir.file("home/cache") && $0.detail?.contains("is malformed") == true })
    #expect(!failures.contains { $0.source == w.store }, "\(failures)")
    let damaged = (try? FileManager.default.contentsOfDirectory(atPath: w.dir.file("home/cache/packs/damaged"))) ?? []
    #expect(damaged.count == packs.count)
    r = try w.run("verify", "--offline")
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
  }

  @Test("fault: verify counts the blobs of a truncated pack as corrupt, lists them and exits 4")
  func verifyCountsATruncatedPacksBlobsAsCorrupt() throws {
    let w = try Self.world()
    #expect(try w.run("update-registry").status == 0)
    let packs = Self.cachedPacks(w)
    #expect(packs.count == 1)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: packs[0]))
    let count = bytes[8..<12].reduce(0) { $0 << 8 | Int($1) }
    try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: packs[0]))
    var r = try w.run("verify", "--offline", "--json")
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    let report = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
    #expect((report?["corrupt"] as? [String])?.count == count)
    #expect((report?["damaged_packs"] as? [String]) == [packs[0]])
    // A second verify finds the cache consistent but for the missing blobs: exit 0.
    r = try w.run("verify", "--offline")
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains(": 0 corrupt"))
    // The text report lists them and says why it exits 4.
    try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: packs[0]))
    r = try w.run("verify", "--offline")
    #expect(r.status == 4)
    #expect(r.out.contains(": \(count) corrupt"), "\(r.out)")
    #expect(r.out.components(separatedBy: "\ncorrupt: ").count == count + 1, "\(r.out)")
    #expect(r.out.contains("damaged pack: \(packs[0]) (set aside)"), "\(r.out)")
    #expect(
      r.stderr.contains("\(count) cached blobs were corrupt and removed (1 damaged pack set aside)"), "\(r.stderr)")
    // The next read fetches them again.
    #expect(try w.run("show", "fzf").status == 0)
  }
}
