import Foundation
import Store
import Sync
import Testing

import TestSupport

/// What the binary says of a revoked recipe, and of revocations it could not check: the
/// sample published to a SeaweedFS bucket, a client synced from it, fzf revoked there, then
/// the home's last confirmation moved two hours back (inside the recipe TTL, past the
/// revocation TTL).
@Suite(.serialized) struct RevocationVisibilityTests {
  static let sample = checkout + "/registry-index/source"
  static let reason = "compromised upstream tarball"

  struct World {
    let w: CLIWorld
    let url: String
    let admin: [String: String]
    let reader: [String: String]
    var fzf: String { SHA256.hash(FileManager.default.contents(atPath: sample + "/recipes/f/fzf.toml")!).hex }

    func run(_ args: [String], env extra: [String: String] = [:]) throws -> CommandResult {
      try runTsuku(args, env: w.env.merging(reader) { $1 }.merging(extra) { $1 }, binary: w.bin, killAfter: 120)
    }

    /// Moves the cache's last confirmation (and so its last revocation check) `seconds` back.
    func age(_ seconds: Double) throws {
      let home = Home(path: w.dir.file("home"))
      var m = try #require(home.readCacheMeta())
      m.confirmed_at = Timestamp.format(Date().addingTimeInterval(-seconds))
      try home.writeCacheMeta(m)
    }
  }

  func world() throws -> World {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let bucket = try server.makeBucket(prefix: "revvis")
    let w = try CLIWorld()
    let world = World(
      w: w, url: "s3://\(bucket)/reg?endpoint=\(server.endpoint)&region=us-east-1",
      admin: ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey],
      reader: ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.reader.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.reader.secretAccessKey])
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    var r = try w.run(
      "registry", "init", "--to", world.url, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"), env: world.admin)
    try #require(r.status == 0, "\(r.stderr)")
    r = try w.run(
      "registry", "publish", "--recipes", Self.sample + "/recipes", "--critical", Self.sample + "/embedded", "--golden",
      Self.sample + "/golden", "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--to", world.url,
      env: world.admin)
    try #require(r.status == 0, "\(r.stderr)")
    let root = try #require(try server.store(bucket: bucket, prefix: "reg").readDocument(.root(1), maxSize: 1 << 20))
    try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
    r = try world.run(["init", "--root", w.dir.file("root.json"), "--source", world.url])
    try #require(r.status == 0, "\(r.stderr)")
    r = try world.run(["update-registry"])
    try #require(r.status == 0, "\(r.stderr)")
    #expect(try world.run(["show", "fzf"]).status == 0)
    return world
  }

  @Test func aRevokedRecipeIsRefusedAndMarkedByShowInfoListAndSearch() throws {
    let x = try world()
    var r = try x.w.run(
      "registry", "revoke", x.fzf, "--reason", Self.reason, "--key", x.w.k("revocation"), "--to", x.url, env: x.admin)
    try #require(r.status == 0, "\(r.stderr)")
    try x.age(2 * 3600)
    r = try x.run(["show", "fzf"])
    #expect(r.status == 4, "\(r.status): \(r.stderr)")
    #expect(r.stderr.contains("is revoked: \(Self.reason)"), "\(r.stderr)")
    #expect(r.stdout.isEmpty)
    let id = try #require(ObjectID(hex: x.fzf))
    #expect(!(try Home(path: x.w.dir.file("home")).cache.contains(id)))
    // info: the status, the reason and the date, also now that nothing of it is cached.
    r = try x.run(["info", "fzf"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("status:        REVOKED on "), "\(r.out)")
    #expect(r.out.contains(Self.reason), "\(r.out)")
    #expect(r.out.contains("source:        none (revoked: not served)"), "\(r.out)")
    r = try x.run(["info", "fzf", "--json"])
    let info = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    let revoked = try #require(info["revoked"] as? [String: Any], "\(r.out)")
    #expect(revoked["reason"] as? String == Self.reason)
    #expect(revoked["sha256"] as? String == x.fzf)
    #expect((revoked["date"] as? String).flatMap(Timestamp.parse) != nil, "\(revoked)")
    r = try x.run(["info", "jq", "--json"])
    #expect((try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])?["revoked"] == nil, "\(r.out)")
    // list and search: a marker in text, the record in JSON.
    r = try x.run(["list"])
    let line = r.out.split(separator: "\n").first { $0.hasPrefix("fzf ") }
    #expect(line?.contains("[REVOKED]") == true, "\(r.out)")
    #expect(r.out.split(separator: "\n").filter { $0.contains("[REVOKED]") }.count == 1, "\(r.out)")
    r = try x.run(["list", "--json"])
    let list = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]])
    #expect(list.filter { $0["revoked"] != nil }.compactMap { $0["name"] as? String } == ["fzf"])
    r = try x.run(["search", "fzf"])
    #expect(r.out.hasPrefix("fzf  [REVOKED] "), "\(r.out)")
    r = try x.run(["search", "fzf", "--json"])
    let found = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]])
    #expect((found.first?["revoked"] as? [String: Any])?["reason"] as? String == Self.reason, "\(r.out)")
  }

  @Test func offlinePastTheRevocationTTLServesWithOneWarningLine() throws {
    let x = try world()
    try x.age(2 * 3600 + 60)
    let r = try x.run(["show", "fzf"], env: ["TSUKU_SOURCES": "off"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: Self.sample + "/recipes/f/fzf.toml"))
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(r.stderr)")
    #expect(lines.first?.hasPrefix("warning: revocations last checked 2 hours ago; no source to ask") == true, "\(r.stderr)")
  }

  @Test func aBadRevocationTTLIsAUsageErrorNamingTheValue() throws {
    let w = try CLIWorld()
    for bad in ["30s", "2d", "hourly"] {
      let r = try runTsuku(["list"], env: w.env.merging(["TSUKU_REVOCATION_TTL": bad]) { $1 }, binary: w.bin, killAfter: 60)
      #expect(r.status == 64, "\(bad): \(r.status) \(r.stderr)")
      #expect(r.stderr.contains("invalid TSUKU_REVOCATION_TTL '\(bad)'"), "\(r.stderr)")
    }
    let r = try runTsuku(["list"], env: w.env.merging(["TSUKU_REVOCATION_DEADLINE": "5m"]) { $1 }, binary: w.bin, killAfter: 60)
    #expect(r.status == 64, "\(r.stderr)")
    #expect(r.stderr.contains("invalid TSUKU_REVOCATION_DEADLINE '5m'"), "\(r.stderr)")
  }
}
