import Foundation
import Store
import Sync
import Testing

import TestSupport

/// One registry in three stores: a directory, a git repository and a SeaweedFS bucket started
/// for the test, driven by the built binary with repeated `--to`. In the canonical order the
/// commands write them in (by location): the directory, the git repository, the bucket.
struct Fleet {
  let w: CLIWorld
  let directory: String
  let git: String
  let bucket: String
  let server: S3TestServer
  var all: [String] { [directory, git, bucket] }
  var admin: [String: String] {
    ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
  }
  static let sample = checkout + "/registry-index/source"

  /// How the three stores get their root.
  enum Setup {
    /// `registry init` with three `--to`.
    case initAll
    /// `registry init --to` the git repository, its root copied into the other two by hand
    /// (as maintainers had to): for tests of the other commands alone.
    case copyRoot
    /// No root anywhere.
    case none
  }

  /// Keys, and the root as `setup` says.
  static func make(_ name: String, setup: Setup = .initAll) throws -> Fleet {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let w = try CLIWorld()
    let bucketName = try server.makeBucket(prefix: name)
    let repo = try makeGitRepository(at: w.dir.file("registry.git"), bare: true)
    let f = Fleet(
      w: w, directory: w.dir.file("reg-dir"), git: "git+file://\(repo)?dir=store",
      bucket: "s3://\(bucketName)/reg?endpoint=\(server.endpoint)&region=us-east-1", server: server)
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation", "index2", "root2"] {
      #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0)
    }
    switch setup {
    case .none: return f
    case .initAll:
      let r = try f.run(["registry", "init"] + f.to(f.all) + f.rootKeys())
      try #require(r.status == 0, "\(r.stderr)")
    case .copyRoot:
      let r = try f.run(["registry", "init", "--to", f.git] + f.rootKeys())
      try #require(r.status == 0, "\(r.stderr)")
      let root = try #require(try GitStore(repository: repo, subdirectory: "store").readDocument(.root(1), maxSize: 1 << 20))
      try DirectoryStore(path: f.directory).apply(StoreChange(documents: [(.root(1), root)]))
      try server.store(bucket: bucketName, prefix: "reg").apply(StoreChange(documents: [(.root(1), root)]))
    }
    let root = try #require(FileManager.default.contents(atPath: f.directory + "/root/1.root.json"))
    try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
    return f
  }

  func to(_ targets: [String]) -> [String] { targets.flatMap { ["--to", $0] } }

  func rootKeys(root: String = "root") -> [String] {
    [
      "--root-key", w.k(root) + ".pub", "--index-key", w.k("index") + ".pub", "--revocation-key",
      w.k("revocation") + ".pub", "--sign", w.k(root),
    ]
  }

  /// The binary with the bucket's credentials, killed if it runs past `killAfter` seconds.
  func run(_ args: [String], env extra: [String: String] = [:], killAfter: Double = 120) throws -> CommandResult {
    try runTsuku(args, env: w.env.merging(admin) { $1 }.merging(extra) { $1 }, binary: w.bin, killAfter: killAfter)
  }

  /// `registry status --root root.json --to` each of `targets` (default: all three).
  func status(_ targets: [String]? = nil, json: Bool = false) throws -> CommandResult {
    try run(
      ["registry", "status", "--root", w.dir.file("root.json"), "--timeout", "5"] + to(targets ?? all)
        + (json ? ["--json"] : []), killAfter: 60)
  }

  /// `status` must say all three agree.
  func expectEqual(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let r = try status()
    #expect(r.status == 0, "after \(step): \(r.out) \(r.stderr)", sourceLocation: sourceLocation)
  }

  func publishArgs(_ targets: [String], recipes: String = sample + "/recipes", key: String = "index") -> [String] {
    [
      "registry", "publish", "--recipes", recipes, "--critical", Self.sample + "/embedded", "--golden",
      Self.sample + "/golden", "--key", w.k(key), "--revocation-key", w.k("revocation"), "--allow-removals",
    ] + to(targets)
  }

  @discardableResult
  func publish(_ targets: [String], recipes: String = sample + "/recipes", key: String = "index") throws -> CommandResult {
    let r = try run(publishArgs(targets, recipes: recipes, key: key))
    #expect(r.status == 0, "\(r.stderr)")
    return r
  }

  /// The bytes of `index.json` in each of the three stores.
  func indexFiles() throws -> [Data?] {
    try all.map { try StoreURL.openReader($0, environment: admin).readDocument(.index, maxSize: 1 << 24) }
  }

  /// A copy of the sample recipes with one line added to fzf: a publish that changes something.
  func changedRecipes(_ name: String) throws -> String {
    let changed = w.dir.file(name)
    if FileManager.default.fileExists(atPath: changed) { return changed }
    try FileManager.default.copyItem(atPath: Self.sample + "/recipes", toPath: changed)
    let fzf = changed + "/f/fzf.toml"
    try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# \(name)\n").write(toFile: fzf, atomically: true, encoding: .utf8)
    return changed
  }

  /// The SHA-256 of the sample's fzf recipe, a hash to revoke.
  var fzfHash: String {
    SHA256.hash(FileManager.default.contents(atPath: Self.sample + "/recipes/f/fzf.toml")!).hex
  }
}
