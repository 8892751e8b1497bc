import Foundation
import Store
import Sync
import Testing

import TestSupport

let checkout: String = {
  var u = URL(fileURLWithPath: #filePath)
  for _ in 0..<3 { u.deleteLastPathComponent() }
  return u.path
}()

/// A maintainer and a user, each driving the built binary.
final class CLIWorld: @unchecked Sendable {
  let dir: TemporaryDirectory
  let bin = tsukuBinary(checkout: checkout)
  var store: String { "file://" + dir.file("store") }
  var env: [String: String] { ["TSUKU_HOME": dir.file("home"), "HOME": dir.path] }

  init() throws { dir = try TemporaryDirectory(prefix: "tsuku-cli") }

  @discardableResult
  func run(_ args: String..., env extra: [String: String] = [:]) throws -> CommandResult {
    try runTsuku(args, env: env.merging(extra) { $1 }, binary: bin)
  }

  func k(_ n: String) -> String { dir.file("keys/\(n).key") }

  /// keygen x3, registry init, publish the sample, tsuku init.
  func setUp(recipes: String = checkout + "/registry-index/source/recipes") throws {
    try FileManager.default.createDirectory(atPath: dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] {
      let r = try run("registry", "keygen", "--out", k(role))
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.out.trimmingCharacters(in: .newlines).count == 64)
    }
    var r = try run(
      "registry", "init", "--to", store, "--root-key", k("root") + ".pub", "--index-key", k("index") + ".pub",
      "--revocation-key", k("revocation") + ".pub", "--sign", k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    r = try run(
      "registry", "publish", "--recipes", recipes, "--critical", checkout + "/registry-index/source/embedded",
      "--golden", checkout + "/registry-index/source/golden", "--key", k("index"), "--to", store)
    #expect(r.status == 0, "\(r.stderr)")
    r = try run("init", "--root", dir.file("store/root/1.root.json"), "--source", store)
    #expect(r.status == 0, "\(r.stderr)")
  }
}

@Suite struct CLITests {
  @Test func endToEndPublishSyncShowPlanInfoListSearchVerify() throws {
    let w = try CLIWorld()
    try w.setUp()
    var r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("index version 0 -> 1"))
    r = try w.run("update-registry")
    #expect(r.out.hasPrefix("registry up to date: index version 1"))

    r = try w.run("show", "fzf")
    #expect(r.status == 0)
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))

    r = try w.run("plan", "ca-certificates", "--platform", "linux-amd64")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/golden/embedded/ca-certificates/v2025-12-02-linux-amd64.json"))

    r = try w.run("info", "fzf", "--json")
    let info = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
    #expect(info?["category"] as? String == "community")
    #expect(info?["index_version"] as? Int == 1)

    r = try w.run("list", "--json")
    let list = try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]]
    #expect((list?.count ?? 0) >= 119)
    #expect(list?.filter { $0["category"] as? String == "critical" }.count == 19)

    r = try w.run("search", "fuzzy")
    #expect(r.out.contains("fzf"))

    r = try w.run("verify", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("\"corrupt\" : [\n\n  ]") || r.out.contains("\"corrupt\" : []"))
  }

  @Test func tamperedBlobInTheSourceExitsFourAndNeverEntersTheCache() throws {
    let w = try CLIWorld()
    try w.setUp()
    let fzf = try #require(FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
    let id = SHA256.hash(fzf)
    var bytes = [UInt8](fzf)
    bytes[0] ^= 0x20
    try Data(bytes).write(to: URL(fileURLWithPath: w.dir.file("store/") + id.path))
    let r = try w.run("update-registry")
    #expect(r.status == 4)
    #expect(r.stderr.hasPrefix("error: blob '\(id.hex)'"))
    #expect(!FileManager.default.fileExists(atPath: w.dir.file("home/cache/") + id.path))
  }

  @Test func tamperedCachedBlobIsDetectedByShowAndVerify() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let fzf = try #require(FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
    let cacheDir = w.dir.file("home/cache")
    #expect(try tamperCachedBlob(cacheDir: cacheDir, id: SHA256.hash(fzf)))
    var r = try w.run("show", "fzf", "--offline")
    #expect(r.status == 4)
    #expect(r.stderr.contains("corrupt"))
    // Fetched again from the source, then damaged again: verify finds it.
    #expect(try w.run("show", "fzf").stdout == fzf)
    #expect(try tamperCachedBlob(cacheDir: cacheDir, id: SHA256.hash(fzf)))
    r = try w.run("verify")
    #expect(r.status == 4)
    #expect(r.out.contains("corrupt: \(SHA256.hash(fzf).hex) (removed)"))
  }

  @Test(arguments: ["../../etc/passwd", "/etc/passwd", "Fzf"])
  func badRecipeNameExits64AndTouchesNothing(name: String) throws {
    let w = try CLIWorld()
    let r = try w.run("show", name)
    #expect(r.status == 64)
    #expect(r.stderr.hasPrefix("error: invalid recipe name '\(name)'"))
    #expect(!FileManager.default.fileExists(atPath: w.dir.file("home")))
  }

  @Test func unknownRecipeExitsThree() throws {
    let w = try CLIWorld()
    try w.setUp()
    let r = try w.run("show", "no-such-tool")
    #expect(r.status == 3)
    #expect(r.stderr == "error: no recipe named 'no-such-tool' in the registry (index version 1)\n")
  }

  @Test func publishOfABrokenRecipeNamesTheFileAndWritesNothing() throws {
    let w = try CLIWorld()
    try w.setUp()
    let bad = w.dir.file("bad/b")
    try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
    try Data("[metadata]\nname = \"broken\"\n".utf8).write(to: URL(fileURLWithPath: bad + "/broken.toml"))
    let before = try FileManager.default.subpathsOfDirectory(atPath: w.dir.file("store")).sorted()
    let index = FileManager.default.contents(atPath: w.dir.file("store/index.json"))
    let r = try w.run("registry", "publish", "--recipes", w.dir.file("bad"), "--key", w.k("index"), "--to", w.store)
    #expect(r.status == 64)
    #expect(r.stderr.hasPrefix("error: broken.toml:") || r.stderr.contains("broken.toml"))
    #expect(try FileManager.default.subpathsOfDirectory(atPath: w.dir.file("store")).sorted() == before)
    #expect(FileManager.default.contents(atPath: w.dir.file("store/index.json")) == index)
  }

  @Test func twoProcessesSyncingAtOnceLeaveACacheThatVerifies() throws {
    let w = try CLIWorld()
    try w.setUp()
    let procs = try (0..<2).map { _ -> Process in
      let p = Process()
      p.executableURL = URL(fileURLWithPath: w.bin)
      p.arguments = ["update-registry"]
      p.environment = w.env
      p.standardOutput = FileHandle.nullDevice
      p.standardError = FileHandle.nullDevice
      try p.run()
      return p
    }
    for p in procs { p.waitUntilExit() }
    #expect(procs.allSatisfy { $0.terminationStatus == 0 })
    let r = try w.run("verify", "--json")
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
  }

  @Test func keygenWritesAPrivateKeyFileWithMode0600() throws {
    let w = try CLIWorld()
    let r = try w.run("registry", "keygen", "--out", w.dir.file("k"))
    #expect(r.status == 0)
    let attrs = try FileManager.default.attributesOfItem(atPath: w.dir.file("k"))
    #expect((attrs[.posixPermissions] as? Int) == 0o600)
    #expect(FileManager.default.fileExists(atPath: w.dir.file("k.pub")))
    #expect(try w.run("registry", "keygen", "--out", w.dir.file("k")).status == 64)
  }

  @Test func helpListsTheExitCodes() throws {
    let w = try CLIWorld()
    let r = try w.run("--help")
    #expect(r.status == 0)
    for line in ["0   success", "3   not found", "4   refused for integrity or trust", "5   unavailable", "64  bad arguments"] {
      #expect(r.out.contains(line), "\(line)")
    }
  }

  @Test func defaultRegistryWorksOfflineThroughGit() throws {
    let w = try CLIWorld()
    // No init: the root built into the binary and this checkout's registry-index via git.
    var r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("show", "fzf", "--offline")
    #expect(r.status == 0)
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
  }
}
