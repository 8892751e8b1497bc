import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `tsuku registry mirror`: a registry published to a SeaweedFS bucket (with packs) copied into
/// an empty directory and an empty git repository, checked by `registry status` and by clients
/// syncing from each copy; a corrupt source refused; forward only.
@Suite(.serialized) struct MirrorTests {
  let sample = checkout + "/registry-index/source"

  struct World {
    let w: CLIWorld
    let bucket: String
    let directory: String
    let git: String
    var admin: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    }

    /// Runs the binary with the bucket's credentials, killed past 120 s.
    func run(_ args: [String], env: [String: String] = [:]) throws -> CommandResult {
      try runTsuku(args, env: w.env.merging(admin) { $1 }.merging(env) { $1 }, binary: w.bin, killAfter: 120)
    }

    func mirror(from: String, to targets: [String], json: Bool = false, env: [String: String] = [:]) throws -> CommandResult {
      var args = ["registry", "mirror", "--from", from]
      for t in targets { args += ["--to", t] }
      if json { args.append("--json") }
      return try run(args, env: env)
    }

    func status(_ targets: [String]) throws -> CommandResult {
      var args = ["registry", "status", "--root", w.dir.file("root.json"), "--timeout", "10"]
      for t in targets { args += ["--to", t] }
      return try run(args)
    }

    func publish(to target: String, recipes: String = checkout + "/registry-index/source/recipes") throws {
      let r = try run([
        "registry", "publish", "--recipes", recipes, "--critical", checkout + "/registry-index/source/embedded", "--golden",
        checkout + "/registry-index/source/golden", "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--to",
        target,
      ])
      #expect(r.status == 0, "\(r.stderr)")
    }
  }

  /// Keys, a root and one publish with packs to `source` (a fresh bucket when nil); empty
  /// directory and git targets.
  func world(source: String? = nil) throws -> World {
    let w = try CLIWorld()
    var url = source ?? ""
    if source == nil {
      let server: S3TestServer
      do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
      url = "s3://\(try server.makeBucket(prefix: "mirror"))/reg?endpoint=\(server.endpoint)&region=us-east-1"
    }
    let repo = try makeGitRepository(at: w.dir.file("copy.git"), bare: true)
    let world = World(w: w, bucket: url, directory: w.dir.file("copy-dir"), git: "git+file://\(repo)?dir=store")
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    var r = try world.run([
      "registry", "init", "--to", url, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"),
    ])
    #expect(r.status == 0, "\(r.stderr)")
    let root = try #require(try StoreURL.openReader(url, environment: world.admin).readDocument(.root(1), maxSize: 1 << 20))
    try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
    r = try world.run([
      "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden", sample + "/golden",
      "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--packs", source == nil ? "always" : "never", "--to", url,
    ])
    #expect(r.status == 0, "\(r.stderr)")
    return world
  }

  func json(_ r: CommandResult) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.out) \(r.stderr)")
  }

  /// A client with its own home syncs from `url` and shows every sample recipe as its file.
  func clientShowsTheSample(_ s: World, from url: String, home: String) throws {
    let env = ["TSUKU_HOME": s.w.dir.file(home)]
    var r = try s.run(["init", "--root", s.w.dir.file("root.json"), "--source", url], env: env)
    #expect(r.status == 0, "\(r.stderr)")
    r = try s.run(["update-registry"], env: env)
    #expect(r.status == 0, "\(url): \(r.stderr)")
    var shown = 0
    for dir in ["recipes", "embedded"] {
      let files = FileManager.default.enumerator(atPath: sample + "/" + dir)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".toml") }
      for rel in files {
        let name = String((rel as NSString).lastPathComponent.dropLast(5))
        r = try s.run(["show", name, "--offline"], env: env)
        #expect(r.stdout == FileManager.default.contents(atPath: sample + "/" + dir + "/" + rel), "\(url) \(name)")
        shown += 1
      }
    }
    #expect(shown > 5)
  }

  @Test func mirrorFromABucketIntoAnEmptyDirectoryAndGitVerifiesServesClientsAndASecondRunCopiesNothing() throws {
    let s = try world()
    var r = try s.mirror(from: s.bucket, to: [s.directory, s.git], json: true, env: ["TSUKU_PROGRESS": "1"])
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    // The progress line (forced on: stderr is not a terminal here).
    #expect(r.stderr.contains("progress: fetching 1 packs from '"), "\(r.stderr)")
    #expect(r.stderr.contains("progress: writing "), "\(r.stderr)")
    var j = try json(r)
    #expect(j["index_version"] as? Int == 1 && j["root_version"] as? Int == 1)
    #expect(j["index_expired"] as? Bool == false)
    #expect(j["kept_versions"] as? [Int] == [1])
    #expect((j["fetched_packs"] as? Int ?? 0) >= 1, "\(j)")
    let pinned = try #require(j["pinned_objects"] as? Int)
    var targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["target"] as? String } == [s.directory, s.git])
    for t in targets {
      #expect(t["status"] as? String == "copied", "\(t)")
      #expect(t["objects_copied"] as? Int == pinned && t["objects_present"] as? Int == 0, "\(t)")
      #expect((t["bytes_copied"] as? Int ?? 0) > 0)
      // root/1, index/1.index.json, index.json.
      #expect(t["documents_written"] as? Int == 3, "\(t)")
      #expect(t["index_version_before"] == nil && t["index_version_after"] as? Int == 1)
      #expect(t["root_version_after"] as? Int == 1 && t["exit_code"] as? Int == 0)
      #expect(t["seconds"] is Double)
    }
    #expect(targets[1]["commit"] is String)

    r = try s.status([s.bucket, s.directory, s.git])
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    try clientShowsTheSample(s, from: s.directory, home: "home-dir")
    try clientShowsTheSample(s, from: s.git, home: "home-git")

    // Again: nothing is copied, nothing fetched but the documents, no commit.
    r = try s.mirror(from: s.bucket, to: [s.directory, s.git])
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("up to date: \(s.directory), index version 1 (\(pinned) blobs present)"), "\(r.out)")
    #expect(r.out.contains("nothing to copy: every target is up to date"), "\(r.out)")
    r = try s.mirror(from: s.bucket, to: [s.directory, s.git], json: true)
    j = try json(r)
    #expect(j["fetched_packs"] as? Int == 0 && j["fetched_objects"] as? Int == 0, "\(j)")
    targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["status"] as? String } == ["up_to_date", "up_to_date"])
    #expect(targets.map { $0["objects_copied"] as? Int } == [0, 0])
  }

  @Test func aCorruptBlobInTheSourceIsRefusedWithExit4AndNoIndexIsWritten() throws {
    let w0 = try TemporaryDirectory(prefix: "tsuku-mirror-src")
    let s = try world(source: w0.file("source"))
    // One recipe's blob overwritten in the directory source.
    let fzf = try #require(FileManager.default.contents(atPath: sample + "/recipes/f/fzf.toml"))
    let id = SHA256.hash(fzf)
    let path = w0.file("source/objects/sha256/\(id.fanout)/\(id.hex)")
    #expect(FileManager.default.fileExists(atPath: path))
    try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
    try Data(fzf + Data("# tampered\n".utf8)).write(to: URL(fileURLWithPath: path))

    let r = try s.mirror(from: s.bucket, to: [s.directory, s.git])
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains(id.hex) && r.stderr.contains(w0.file("source")), "\(r.stderr)")
    #expect(!r.out.contains("copied"), "\(r.out)")
    #expect(!FileManager.default.fileExists(atPath: s.directory + "/index.json"))
    #expect(try GitStore(repository: s.w.dir.file("copy.git"), subdirectory: "store").readDocument(.index, maxSize: 1 << 20) == nil)
  }

  @Test func aNewerTargetIsRefusedWhileTheOthersAreCopiedAndALaggingOneIsBroughtForward() throws {
    let s = try world()
    var r = try s.mirror(from: s.bucket, to: [s.directory])
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    // The directory moves on to index version 2; the git repository is empty.
    let changed = s.w.dir.file("changed")
    try FileManager.default.copyItem(atPath: sample + "/recipes", toPath: changed)
    let fzf = changed + "/f/fzf.toml"
    try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# changed\n").write(toFile: fzf, atomically: true, encoding: .utf8)
    try s.publish(to: s.directory, recipes: changed)
    let before = try #require(FileManager.default.contents(atPath: s.directory + "/index.json"))

    r = try s.mirror(from: s.bucket, to: [s.directory, s.git], json: true)
    #expect(r.status == 1, "\(r.out) \(r.stderr)")
    #expect(
      r.stderr.contains("error: '\(s.directory)' has index version 2, newer than the 1 of 's3://")
        && r.stderr.contains("'; mirror only moves a target forward\n"),
      "\(r.stderr)")
    let j = try json(r)
    #expect(j["exit_code"] as? Int == 1)
    let targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["status"] as? String } == ["refused", "copied"])
    #expect(targets[0]["index_version_before"] == nil && targets[0]["exit_code"] as? Int == 1)
    #expect(FileManager.default.contents(atPath: s.directory + "/index.json") == before)
    #expect(try s.status([s.bucket, s.git]).status == 0)

    // The other way round: the bucket (a lagging target now) is brought to version 2.
    r = try s.mirror(from: s.directory, to: [s.bucket, s.git], json: true)
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    let k = try json(r)
    #expect(k["kept_versions"] as? [Int] == [2, 1])
    for t in try #require(k["targets"] as? [[String: Any]]) {
      #expect(t["status"] as? String == "copied")
      #expect(t["index_version_before"] as? Int == 1 && t["index_version_after"] as? Int == 2, "\(t)")
      // Only what changed: the new recipe, its shard, the tree, the revocation list...
      #expect((t["objects_copied"] as? Int ?? 0) > 0 && (t["objects_present"] as? Int ?? 0) > 0, "\(t)")
    }
    r = try s.status([s.bucket, s.directory, s.git])
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
  }
}
