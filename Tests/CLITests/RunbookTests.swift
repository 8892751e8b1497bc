import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The fenced `sh` blocks of SECURITY.md marked `<!-- runbook: NAME -->`, in order.
func runbookBlocks() throws -> [(name: String, script: String)] {
  let text = try String(contentsOfFile: checkout + "/SECURITY.md", encoding: .utf8)
  var out = [(String, String)]()
  var name: String?
  var inBlock = false
  var lines = [String]()
  for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
    if line.hasPrefix("<!-- runbook: ") {
      name = String(line.dropFirst(14).dropLast(4))
    } else if line == "```sh", name != nil {
      inBlock = true
      lines = []
    } else if line == "```", inBlock {
      out.append((name!, lines.joined(separator: "\n")))
      inBlock = false
      name = nil
    } else if inBlock {
      lines.append(String(line))
    }
  }
  return out
}

/// SECURITY.md's runbook over the three stores a registry lives in: a SeaweedFS bucket (its own
/// server, stopped at the end), a git repository (the fallback) and a directory mirror.
@Suite struct RunbookTests {
  struct Stores {
    let w: CLIWorld
    let bucket: String
    let git: String
    let mirror: String
    var all: [String] { [bucket, git, mirror] }
    var to: [String] { all.flatMap { ["--to", $0] } }
    var env: [String: String] {
      w.env.merging([
        "TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID,
        "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey, "TSUKU_CONNECT_TIMEOUT": "2",
        // The registry keeps a transparency log: every index write appends to it.
        "TSUKU_LOG_KEY": w.k("log"),
      ]) { $1 }
    }

    func run(_ args: [String]) throws -> CommandResult { try runTsuku(args, env: env, binary: w.bin, killAfter: 120) }
  }

  func runScript(_ s: Stores, _ script: String) throws -> CommandResult {
    var env = s.env
    env["BUCKET"] = s.bucket
    env["GIT"] = s.git
    env["MIRROR"] = s.mirror
    env["KEYS"] = s.w.dir.file("keys")
    env["PATH"] = URL(fileURLWithPath: s.w.bin).deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    return try runTsuku(["-euo", "pipefail", "-c", script], env: env, binary: "/bin/bash", killAfter: 300)
  }

  /// Every recipe of the sample, as `show` must print it.
  func sampleRecipes() throws -> [String: Data] {
    var out = [String: Data]()
    for folder in ["recipes", "embedded"] {
      let dir = checkout + "/registry-index/source/" + folder
      for p in try FileManager.default.subpathsOfDirectory(atPath: dir) where p.hasSuffix(".toml") {
        out[String((p as NSString).lastPathComponent.dropLast(5))] = FileManager.default.contents(atPath: dir + "/" + p)
      }
    }
    return out
  }

  @Test(.timeLimit(.minutes(10))) func runbookCommandsHaveTheEffectsTheyClaim() throws {
    let blocks = try runbookBlocks()
    #expect(blocks.map(\.name) == ["compromised-hash", "index-key-leak", "repository-compromise"])
    let own: OwnS3Server
    do { own = try OwnS3Server() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let w = try CLIWorld()
    let repo = try makeGitRepository(at: w.dir.file("registry.git"), bare: true)
    let s = Stores(
      w: w, bucket: "s3://\(try own.makeBucket())/v1?endpoint=\(own.endpoint)&region=us-east-1",
      git: "git+file://\(repo)?dir=store", mirror: w.dir.file("mirror"))
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation", "log"] {
      #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0)
    }
    var r = try s.run(
      ["registry", "init", "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
       "--revocation-key", w.k("revocation") + ".pub", "--log-key", w.k("log") + ".pub", "--sign", w.k("root")] + s.to)
    #expect(r.status == 0, "\(r.stderr)")
    let sample = checkout + "/registry-index/source"
    r = try s.run(
      ["registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden",
       sample + "/golden", "--key", w.k("index"), "--revocation-key", w.k("revocation")] + s.to)
    #expect(r.status == 0, "\(r.stderr)")
    r = try s.run(["init", "--root", w.dir.file("mirror/root/1.root.json"), "--source", "\(s.bucket)|\(s.git)"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try s.run(["update-registry"]).status == 0)
    #expect(try s.run(["show", "fzf"]).status == 0)

    // 1. compromised hash
    r = try runScript(s, blocks[0].script)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("published revocation list version 2"), "\(r.out)")
    #expect(r.out.contains("all 3 targets agree"), "\(r.out)")
    // The exposure window, from the log: pinned by index version 1 (the publish) only.
    #expect(r.out.contains("exposure window of "), "\(r.out)")
    #expect(r.out.contains("pinned from index version 1"), "\(r.out)")
    // The audit answers for it: received by the sync, served by the show.
    #expect(r.out.contains("recipe  'fzf'") && r.out.contains("received  yes") && r.out.contains("served    yes"), "\(r.out)")
    r = try s.run(["update-registry"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("'fzf' (sha256 "))
    #expect(r.stderr.contains("is revoked: fzf 0.60 release tarball replaced upstream"))
    r = try s.run(["show", "fzf"])
    #expect(r.status == 4)
    #expect(r.stderr.contains("revoked"))
    #expect(try s.run(["show", "jq"]).status == 0)

    // 2. index key leak
    r = try runScript(s, blocks[1].script)
    #expect(r.status == 0, "\(r.stderr) \(r.out)")
    #expect(r.out.contains("all 3 targets agree"), "\(r.out)")
    r = try s.run(["update-registry"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try Home(path: w.dir.file("home")).loadTrust()?.0.version == 2)
    #expect(try s.run(["show", "jq"]).status == 0)
    // The leaked key can no longer publish, to any of the stores.
    r = try s.run(["registry", "resign", "--key", w.k("index")] + s.to)
    #expect(r.status == 64)
    #expect(r.stderr.contains("is not an index key of root version 2"))

    // 3. repository compromise: every online key replaced.
    r = try runScript(s, blocks[2].script)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("all 3 targets agree"), "\(r.out)")
    r = try s.run(["update-registry"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try Home(path: w.dir.file("home")).loadTrust()?.0.version == 3)
    #expect(try s.run(["show", "jq"]).status == 0)
    #expect(try s.run(["show", "fzf"]).status == 4)

    // The bucket goes down: a fresh client falls back to git, refuses the revoked hash and
    // serves everything else byte for byte.
    own.stop()
    let fresh = ["TSUKU_HOME": w.dir.file("home2")]
    r = try runTsuku(
      ["init", "--root", w.dir.file("mirror/root/1.root.json"), "--source", "\(s.bucket)|\(s.git)"],
      env: s.env.merging(fresh) { $1 }, binary: w.bin, killAfter: 60)
    #expect(r.status == 0, "\(r.stderr)")
    r = try runTsuku(["update-registry"], env: s.env.merging(fresh) { $1 }, binary: w.bin, killAfter: 60)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains(s.git), "\(r.out)")
    #expect(try Home(path: w.dir.file("home2")).loadTrust()?.0.version == 3)
    var served = 0
    for (name, bytes) in try sampleRecipes() {
      r = try runTsuku(["show", name], env: s.env.merging(fresh) { $1 }, binary: w.bin, killAfter: 60)
      if name == "fzf" {
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("revoked"))
      } else {
        #expect(r.status == 0, "\(name): \(r.stderr)")
        #expect(r.stdout == bytes, "\(name)")
        served += 1
      }
    }
    #expect(served >= 20)
  }
}

/// SECURITY.md's threat model points every claim at a test (`Dir/File:name`); a renamed or
/// removed test would leave a claim pointing at nothing.
@Suite struct ThreatModelTests {
  @Test func everyTestTheThreatModelNamesExists() throws {
    let text = try String(contentsOfFile: checkout + "/SECURITY.md", encoding: .utf8)
    let model = try #require(text.range(of: "## Threat model")).upperBound
    let pattern = try NSRegularExpression(pattern: "`([A-Za-z]+)/([A-Za-z]+):([A-Za-z0-9]+)`")
    let body = String(text[model...])
    let matches = pattern.matches(in: body, range: NSRange(body.startIndex..., in: body))
    #expect(matches.count >= 40, "the threat model names \(matches.count) tests")
    for m in matches {
      let part = { (i: Int) in String(body[Range(m.range(at: i), in: body)!]) }
      let file = "\(checkout)/Tests/\(part(1))/\(part(2)).swift"
      let source = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
      #expect(!source.isEmpty, "SECURITY.md names \(file), which does not exist")
      #expect(source.contains("func \(part(3))("), "SECURITY.md names \(part(3)), which \(file) does not define")
    }
  }
}
