import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `tsuku registry status` over three stores of one registry: a directory, a git repository
/// and a SeaweedFS bucket, each read by the binary over its real transport.
@Suite(.serialized) struct StatusTests {
  let sample = checkout + "/registry-index/source"

  struct Stores {
    let w: CLIWorld
    let directory: String
    let git: String
    let bucket: String
    var all: [String] { [directory, git, bucket] }
    var admin: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    }

    /// `registry status --root root.json --to` each of `targets`, killed if it runs past 60 s.
    func status(_ targets: [String], json: Bool = false) throws -> CommandResult {
      var args = ["registry", "status", "--root", w.dir.file("root.json"), "--timeout", "5"]
      for t in targets { args += ["--to", t] }
      if json { args.append("--json") }
      return try runTsuku(args, env: w.env.merging(admin) { $1 }, binary: w.bin, killAfter: 60)
    }

    func publish(to targets: [String], recipes: String = checkout + "/registry-index/source/recipes") throws {
      var args = [
        "registry", "publish", "--recipes", recipes, "--critical",
        checkout + "/registry-index/source/embedded", "--golden", checkout + "/registry-index/source/golden", "--key", w.k("index"),
        "--revocation-key", w.k("revocation"),
      ]
      for t in targets { args += ["--to", t] }
      let r = try runTsuku(args, env: w.env.merging(admin) { $1 }, binary: w.bin)
      #expect(r.status == 0, "\(r.stderr)")
    }
  }

  /// One root written to the git repository, copied to the directory and the bucket, then one
  /// publish to all three: the same bytes everywhere.
  func stores() throws -> Stores {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let w = try CLIWorld()
    let name = try server.makeBucket(prefix: "status")
    let repo = try makeGitRepository(at: w.dir.file("registry.git"), bare: true)
    let s = Stores(
      w: w, directory: w.dir.file("reg-dir"), git: "git+file://\(repo)?dir=store",
      bucket: "s3://\(name)/reg?endpoint=\(server.endpoint)&region=us-east-1")
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    let r = try w.run(
      "registry", "init", "--to", s.git, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    let root = try #require(try GitStore(repository: repo, subdirectory: "store").readDocument(.root(1), maxSize: 1 << 20))
    try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
    try DirectoryStore(path: s.directory).apply(StoreChange(documents: [(.root(1), root)]))
    try server.store(bucket: name, prefix: "reg").apply(StoreChange(documents: [(.root(1), root)]))
    try s.publish(to: s.all)
    return s
  }

  func json(_ r: CommandResult) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.out) \(r.stderr)")
  }

  @Test func statusOfThreeIdenticalStoresAgrees() throws {
    let s = try stores()
    var r = try s.status(s.all)
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    for t in s.all {
      #expect(r.out.contains("agrees: \(t), root version 1, index version 1 (expires "), "\(r.out)")
    }
    #expect(r.out.contains("all 3 targets agree (checked against root version 1 from '\(s.w.dir.file("root.json"))')"))

    // --json: one object per target and `agree`.
    r = try s.status(s.all, json: true)
    #expect(r.status == 0)
    let j = try json(r)
    #expect(j["agree"] as? Bool == true)
    #expect(j["exit_code"] as? Int == 0)
    let targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["target"] as? String } == s.all)
    #expect(Set(targets.compactMap { $0["index_sha256"] as? String }).count == 1)
    for t in targets {
      #expect(t["status"] as? String == "agrees")
      #expect(t["reachable"] as? Bool == true && t["verified"] as? Bool == true)
      #expect(t["root_version"] as? Int == 1 && t["index_version"] as? Int == 1 && t["revocation_version"] as? Int == 1, "\(t)")
      #expect(t["index_expires"] is String && t["revocation_expires"] is String && t["root_expires"] is String)
      #expect((t["problems"] as? [Any])?.isEmpty == true)
    }
  }

  @Test func statusNamesALaggingTarget() throws {
    let s = try stores()
    // A second publish reaches only the directory.
    try s.publish(to: [s.directory])
    var r = try s.status(s.all)
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("agrees: \(s.directory), root version 1, index version 2"), "\(r.out)")
    for t in [s.git, s.bucket] {
      #expect(r.out.contains("lagging: \(t), root version 1, index version 1"), "\(r.out)")
      #expect(r.out.contains("  '\(t)' has index version 1, the newest is 2\n"), "\(r.out)")
    }
    #expect(r.out.contains("targets do not agree"))

    r = try s.status(s.all, json: true)
    #expect(r.status == 2)
    let j = try json(r)
    #expect(j["agree"] as? Bool == false)
    let targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["status"] as? String } == ["agrees", "lagging", "lagging"])
    #expect(targets.map { $0["index_version"] as? Int } == [2, 1, 1])
    // The publish re-signed the revocation list too (--revocation-key).
    #expect(
      (targets[1]["problems"] as? [String]) == [
        "'\(s.git)' has index version 1, the newest is 2", "'\(s.git)' has revocation list version 1, the newest is 2",
      ])
  }

  @Test func statusNamesADivergedTarget() throws {
    let s = try stores()
    // Two publishes of version 2, one to each store: the same version with other bytes.
    try s.publish(to: [s.directory])
    let changed = s.w.dir.file("changed")
    try FileManager.default.copyItem(atPath: sample + "/recipes", toPath: changed)
    let fzf = changed + "/f/fzf.toml"
    try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# changed\n").write(toFile: fzf, atomically: true, encoding: .utf8)
    try s.publish(to: [s.git], recipes: changed)
    let r = try s.status([s.directory, s.git])
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("agrees: \(s.directory), root version 1, index version 2"), "\(r.out)")
    #expect(r.out.contains("diverged: \(s.git), root version 1, index version 2"), "\(r.out)")
    #expect(r.out.contains("  '\(s.git)' has index version 2 with other bytes than '\(s.directory)'\n"), "\(r.out)")
  }

  @Test func statusReportsAnUnreachableTargetAndTheOthers() throws {
    let s = try stores()
    let closed = "http://127.0.0.1:\(LoopbackServer.closedPort())/reg"
    var r = try s.status(s.all + [closed])
    #expect(r.status == 5, "\(r.out) \(r.stderr)")
    for t in s.all {
      #expect(r.out.contains("agrees: \(t), root version 1, index version 1"), "\(r.out)")
    }
    #expect(r.out.contains("unreachable: \(closed)\n"), "\(r.out)")
    #expect(r.out.contains("connection refused"), "\(r.out)")

    r = try s.status(s.all + [closed], json: true)
    #expect(r.status == 5)
    let j = try json(r)
    #expect(j["agree"] as? Bool == false)
    let targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["status"] as? String } == ["agrees", "agrees", "agrees", "unreachable"])
    #expect(targets[3]["reachable"] as? Bool == false)
    #expect(targets[3]["index_version"] == nil)
  }
}
