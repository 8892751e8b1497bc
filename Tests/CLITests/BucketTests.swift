import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The registry in a real S3 bucket (SeaweedFS), driven through the binary; request counts are
/// taken at the server side by a counting proxy.
@Suite(.serialized) struct BucketTests {
  let sample = checkout + "/registry-index/source"

  struct Bucket {
    let w: CLIWorld
    let server: S3TestServer
    let proxy: CountingProxy
    let url: String
    var admin: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    }
    var reader: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.reader.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.reader.secretAccessKey]
    }
  }

  func bucket() throws -> Bucket {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let name = try server.makeBucket(prefix: "cli")
    let proxy = try CountingProxy(upstream: server.endpoint)
    let w = try CLIWorld()
    let b = Bucket(w: w, server: server, proxy: proxy, url: "s3://\(name)/reg?endpoint=\(proxy.endpoint)&region=us-east-1")
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    var r = try w.run(
      "registry", "init", "--to", b.url, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"), env: b.admin)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run(
      "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden", sample + "/golden",
      "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--to", b.url, env: b.admin)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("packs: 1"))
    return b
  }

  func initClient(_ b: Bucket) throws {
    // The trusted root, fetched out of band from the bucket the maintainer wrote.
    let store = b.server.store(bucket: String(b.url.dropFirst(5).prefix { $0 != "/" }), prefix: "reg")
    let root = try #require(try store.readDocument(.root(1), maxSize: 1 << 20))
    try root.write(to: URL(fileURLWithPath: b.w.dir.file("root.json")))
    let r = try b.w.run("init", "--root", b.w.dir.file("root.json"), "--source", b.url, env: b.reader)
    #expect(r.status == 0, "\(r.stderr)")
  }

  @Test func publishToABucketThenSyncThenShowGivesIdenticalBytesInAtMostEightRequests() throws {
    let b = try bucket()
    try initClient(b)
    try b.proxy.reset()
    var r = try b.w.run("update-registry", env: b.reader)
    #expect(r.status == 0, "\(r.stderr)")
    let cold = try b.proxy.count()
    #expect(cold <= 8, "cold sync took \(cold) requests")
    for dir in ["recipes", "embedded"] {
      let files = FileManager.default.enumerator(atPath: sample + "/" + dir)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".toml") }
      for rel in files {
        let name = String((rel as NSString).lastPathComponent.dropLast(5))
        r = try b.w.run("show", name, "--offline")
        #expect(r.stdout == FileManager.default.contents(atPath: sample + "/" + dir + "/" + rel), "\(name)")
      }
    }
    // Nothing new: exactly one request, a conditional GET answered 304.
    try b.proxy.reset()
    r = try b.w.run("update-registry", "--force", env: b.reader)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.hasPrefix("registry up to date"))
    #expect(try b.proxy.count() == 1)
  }

  @Test func readOnlyKeyCannotPublishAndAWrongSecretIsReportedWithoutTheSecret() throws {
    let b = try bucket()
    var r = try b.w.run(
      "registry", "publish", "--recipes", sample + "/recipes", "--key", b.w.k("index"), "--to", b.url, "--allow-removals",
      env: b.reader)
    #expect(r.status == 1)
    #expect(r.stderr.contains("AccessDenied"), "\(r.stderr)")
    #expect(!r.stderr.contains(S3TestServer.reader.secretAccessKey))
    let secret = "not-the-secret-4f1c9e"
    r = try b.w.run(
      "registry", "publish", "--recipes", sample + "/recipes", "--key", b.w.k("index"), "--to", b.url, "--allow-removals",
      env: ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": secret])
    #expect(r.status != 0)
    #expect(r.stderr.contains("the secret key for access key '\(S3TestServer.admin.accessKeyID)' is wrong"), "\(r.stderr)")
    #expect(!r.stderr.contains(secret))
  }

  @Test func serverStoppedMidSyncGivesAClearErrorAndLeavesTheCacheVerifiable() throws {
    let b = try bucket()
    try initClient(b)
    #expect(try b.w.run("update-registry", env: b.reader).status == 0)
    let before = FileManager.default.contents(atPath: b.w.dir.file("home/cache/index.json"))
    // A new index version with a changed recipe, then the server goes away two requests in.
    let changed = b.w.dir.file("changed")
    try FileManager.default.copyItem(atPath: sample + "/recipes", toPath: changed)
    let fzf = changed + "/f/fzf.toml"
    try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# changed\n").write(toFile: fzf, atomically: true, encoding: .utf8)
    var r = try b.w.run(
      "registry", "publish", "--recipes", changed, "--critical", sample + "/embedded", "--golden", sample + "/golden",
      "--key", b.w.k("index"), "--to", b.url, env: b.admin)
    #expect(r.status == 0, "\(r.stderr)")
    try b.proxy.failAfter(2)
    r = try b.w.run("update-registry", env: b.reader.merging(["TSUKU_API_TIMEOUT": "5"]) { $1 })
    #expect(r.status == 5, "\(r.stderr)")
    #expect(r.stderr.hasPrefix("error: "))
    #expect(r.stderr.split(separator: "\n").first?.contains(String(b.url.prefix(20))) == true || r.stderr.contains("127.0.0.1"))
    #expect(FileManager.default.contents(atPath: b.w.dir.file("home/cache/index.json")) == before)
    r = try b.w.run("verify", "--offline")
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
  }

  @Test func proxyFromTheEnvironmentIsHonouredAndNoProxyBypassesIt() throws {
    let b = try bucket()
    try initClient(b)
    // Talk to the server directly, through a forward proxy named by http_proxy.
    let direct = b.url.replacingOccurrences(of: b.proxy.endpoint, with: b.server.endpoint)
    let forward = try CountingProxy(upstream: b.server.endpoint)
    var env = b.reader
    env["TSUKU_SOURCES"] = direct
    env["http_proxy"] = forward.endpoint
    env["NO_PROXY"] = ""
    var r = try b.w.run("update-registry", "--force", env: env)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try forward.count() >= 1)
    try forward.reset()
    env["NO_PROXY"] = "127.0.0.1"
    r = try b.w.run("update-registry", "--force", env: env)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try forward.count() == 0)
  }

  @Test func healthSaysHealthyDegradedOrUnreachable() throws {
    let b = try bucket()
    try initClient(b)
    var r = try b.w.run("registry", "health", "--source", b.url, "--json", env: b.reader)
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("\"status\" : \"healthy\""))
    r = try b.w.run("registry", "health", "--source", b.url, "--slow", "0", env: b.reader)
    #expect(r.status == 2)
    #expect(r.out.hasPrefix("degraded: "))
    r = try b.w.run("registry", "health", "--source", "s3://closed/reg?endpoint=http://127.0.0.1:9&region=us-east-1", "--timeout", "2", env: b.reader)
    #expect(r.status == 5)
    #expect(r.out.hasPrefix("unreachable: "))
  }
}
