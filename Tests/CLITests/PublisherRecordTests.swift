import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Every index version records who made it, inside the signed payload: `registry log` shows it
/// per version from a git repository and from a bucket, verified; the git commit and the
/// bucket's object metadata carry it too; a record changed in a store no longer verifies.
@Suite struct PublisherRecordTests {
  let sample = checkout + "/registry-index/source"

  func keys(_ w: CLIWorld) throws {
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
  }

  func publish(_ w: CLIWorld, to targets: [String], env: [String: String]) throws -> CommandResult {
    try runTsuku(
      ["registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden",
       sample + "/golden", "--key", w.k("index"), "--revocation-key", w.k("revocation")]
        + targets.flatMap { ["--to", $0] }, env: w.env.merging(env) { $1 }, binary: w.bin)
  }

  func log(_ w: CLIWorld, _ url: String, env: [String: String]) throws -> [[String: Any]] {
    let r = try runTsuku(
      ["registry", "log", "--from", url, "--root", w.dir.file("root.json"), "--json"], env: w.env.merging(env) { $1 },
      binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.stderr)")
    return try #require(json["versions"] as? [[String: Any]])
  }

  @Test func theIdentityOfEachVersionIsRecordedAndShownFromGitAndTheBucket() throws {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let w = try CLIWorld()
    try keys(w)
    let name = try server.makeBucket(prefix: "pubby")
    let bucket = "s3://\(name)/reg?endpoint=\(server.endpoint)&region=us-east-1"
    let repo = try makeGitRepository(at: w.dir.file("registry.git"), bare: true)
    let git = "git+file://\(repo)?dir=store"
    let admin = [
      "TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey,
    ]
    var r = try runTsuku(
      ["registry", "init", "--to", bucket, "--to", git, "--root-key", w.k("root") + ".pub", "--index-key",
       w.k("index") + ".pub", "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root")],
      env: w.env.merging(admin) { $1 }, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    let root = try #require(try GitStore(repository: repo, subdirectory: "store").readDocument(.root(1), maxSize: 1 << 20))
    try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))

    r = try publish(w, to: [bucket, git], env: admin.merging(["TSUKU_PUBLISHER": "release-bot run 41"]) { $1 })
    #expect(r.status == 0, "\(r.stderr)")
    r = try runTsuku(
      ["registry", "resign", "--key", w.k("index"), "--to", bucket, "--to", git],
      env: w.env.merging(admin.merging(["TSUKU_PUBLISHER": "alice (on call)"]) { $1 }) { $1 }, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")

    let indexKey = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.k("index") + ".pub"))) as? [String: Any])
    let keyid = try #require(indexKey["keyid"] as? String)
    for url in [bucket, git] {
      let versions = try log(w, url, env: admin)
      #expect(versions.map { $0["index_version"] as? Int } == [2, 1], "\(url)")
      #expect(versions.map { $0["identity"] as? String } == ["alice (on call)", "release-bot run 41"], "\(url)")
      #expect(versions.allSatisfy { $0["signed_by"] as? [String] == [keyid] && $0["tool"] as? String == "tsuku \(PublishedBy.toolVersion)" })
      #expect(versions.map { $0["current"] as? Bool } == [true, false])
    }
    // The text form names both.
    r = try runTsuku(["registry", "log", "--from", git, "--root", w.dir.file("root.json")], env: w.env, binary: w.bin)
    #expect(r.out.split(separator: "\n").count == 2 && r.out.contains("alice (on call)") && r.out.contains("signed by \(keyid.prefix(16))"))

    // The git commit carries it as trailers.
    let message = try runGit(["log", "-1", "--format=%B"], in: repo)
    #expect(message.contains("Published-by: alice (on call)"), "\(message)")
    #expect(message.contains("Signed-by: \(keyid)"))
    // The bucket keeps it with index.json (anonymous reads are allowed by the test server).
    let head = Process()
    head.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    head.arguments = ["curl", "-sfI", server.publicURL(bucket: name, prefix: "reg") + "/index.json"]
    let out = Pipe()
    head.standardOutput = out
    try head.run()
    let headers = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).lowercased()
    head.waitUntilExit()
    #expect(head.terminationStatus == 0)
    #expect(headers.contains("x-amz-meta-tsuku-published-by: alice (on call)"), "\(headers)")
    // The keys whose signatures the index.json carries (index and revocation sections).
    let signedBy = headers.split(separator: "\r\n").first { $0.hasPrefix("x-amz-meta-tsuku-signed-by: ") }
    #expect(signedBy?.contains(keyid.prefix(16)) == true, "\(headers)")
  }

  @Test func aPublisherRecordChangedInTheStoreNoLongerVerifies() throws {
    let w = try CLIWorld()
    try keys(w)
    let dir = w.dir.file("store")
    var r = try w.run(
      "registry", "init", "--to", dir, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    try FileManager.default.copyItem(atPath: dir + "/root/1.root.json", toPath: w.dir.file("root.json"))
    r = try publish(w, to: [dir], env: ["TSUKU_PUBLISHER": "release-bot"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try log(w, dir, env: [:]).first?["identity"] as? String == "release-bot")

    // Someone with write access to the store rewrites the record (the signature stays).
    let path = dir + "/index.json"
    var file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    var index = try #require(file["index"] as? [String: Any])
    let encoded = try #require(index["payload"] as? String)
    let payload = try #require(Data(base64Encoded: encoded))
    let forged = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "release-bot", with: "someone-else")
    #expect(forged != String(decoding: payload, as: UTF8.self))
    index["payload"] = Data(forged.utf8).base64EncodedString()
    file["index"] = index
    try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: path))
    r = try runTsuku(["registry", "log", "--from", dir, "--root", w.dir.file("root.json")], env: w.env, binary: w.bin)
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("is not signed by the index keys"), "\(r.stderr)")
    #expect(!r.out.contains("someone-else"))
  }
}
