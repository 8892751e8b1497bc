import Foundation
import Store
import Sync
import Synchronization
import Testing

import TestSupport

/// `tsuku metrics`, `TSUKU_METRICS_FILE` and `tsuku info` through the binary: counters add up
/// across commands (each a process of its own), the text parses strictly, counts match what
/// was done, and no secret reaches metrics, logs or the audit log.
@Suite struct MetricsCLITests {
  func metrics(_ w: CLIWorld, env: [String: String] = [:]) throws -> PrometheusText {
    let r = try w.run("metrics", env: env)
    #expect(r.status == 0, "\(r.stderr)")
    return try PrometheusText(r.out)
  }

  func json(_ r: CommandResult) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.out) \(r.stderr)")
  }

  @Test("a sync counts what update-registry --json reports; N shows are N cache hits; the text parses")
  func countsMatchWhatWasDone() throws {
    let w = try CLIWorld()
    try w.setUp()
    var r = try w.run("update-registry", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let report = try json(r)
    var p = try metrics(w)
    let objects = try #require(report["fetched_objects"] as? Int)
    let bytes = try #require(report["fetched_bytes"] as? Int)
    #expect(objects > 0 && bytes > 0)
    #expect(p.value("tsuku_fetched_objects_total", ["backend": "file", "what": "blob"]) == Double(objects))
    #expect(p.value("tsuku_fetched_bytes_total", ["backend": "file", "what": "blob"]) == Double(bytes))
    #expect(p.sum("tsuku_fetch_duration_seconds_count", matching: ["backend": "file"]) >= 2)
    #expect(p.families["tsuku_fetch_duration_seconds"]?.type == "histogram")
    #expect(p.families["tsuku_fetched_bytes_total"]?.type == "counter")
    let hits = p.value("tsuku_cache_hits_total", ["kind": "recipe"]) ?? 0
    for _ in 0..<7 {
      r = try w.run("show", "fzf")
      #expect(r.status == 0, "\(r.stderr)")
    }
    p = try metrics(w)
    #expect(p.value("tsuku_cache_hits_total", ["kind": "recipe"]) == hits + 7)
    #expect(p.value("tsuku_cache_misses_total", ["kind": "recipe"]) == nil)
    // Reading the metrics records nothing.
    #expect(try metrics(w).value("tsuku_cache_hits_total", ["kind": "recipe"]) == hits + 7)
    // --json holds the same cumulative counts.
    r = try w.run("metrics", "--json")
    let counters = try #require(try json(r)["counters"] as? [[String: Any]])
    let recipeHits = counters.first { ($0["name"] as? String) == "tsuku_cache_hits_total" && ($0["labels"] as? [String: String]) == ["kind": "recipe"] }
    #expect(recipeHits?["value"] as? Double == hits + 7)
  }

  @Test("attack: a tampered blob in the source is one verification failure")
  func tamperedBlobIsOneVerificationFailure() throws {
    let w = try CLIWorld()
    try w.setUp()
    let fzf = try #require(FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
    let id = SHA256.hash(fzf)
    var bytes = [UInt8](fzf)
    bytes[0] ^= 0x20
    try Data(bytes).write(to: URL(fileURLWithPath: w.dir.file("store/") + id.path))
    #expect(try w.run("update-registry").status == 4)
    var p = try metrics(w)
    #expect(p.value("tsuku_verification_failures_total", ["backend": "file", "reason": "hash_mismatch"]) == 1)
    #expect(p.sum("tsuku_verification_failures_total") == 1)
    // Repaired at the source and synced; then the cached copy is damaged and 'tsuku verify'
    // finds it: one failure of the cache.
    try fzf.write(to: URL(fileURLWithPath: w.dir.file("store/") + id.path))
    #expect(try w.run("update-registry").status == 0)
    #expect(try tamperCachedBlob(cacheDir: w.dir.file("home/cache"), id: id))
    #expect(try w.run("verify").status == 4)
    p = try metrics(w)
    #expect(p.value("tsuku_verification_failures_total", ["backend": "cache", "reason": "hash_mismatch"]) == 1)
    #expect(p.sum("tsuku_verification_failures_total") == 2)
  }

  @Test("commands running at the same time lose no count")
  func concurrentCommandsLoseNoCount() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let before = try metrics(w).value("tsuku_cache_hits_total", ["kind": "recipe"]) ?? 0
    let statuses = Mutex<[Int32]>([])
    DispatchQueue.concurrentPerform(iterations: 12) { i in
      let r = try? w.run("show", i % 2 == 0 ? "fzf" : "jq")
      statuses.withLock { $0.append(r?.status ?? -1) }
    }
    #expect(statuses.withLock { $0 } == Array(repeating: 0, count: 12))
    #expect(try metrics(w).value("tsuku_cache_hits_total", ["kind": "recipe"]) == before + 12)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: w.dir.file("home")).filter { $0.contains(".tmp-") }
    #expect(leftovers.isEmpty)
  }

  @Test("attack: a revoked hash is one revocation refusal per refused read")
  func revokedHashIsOneRevocationRefusal() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let hash = try #require((try json(try w.run("info", "fzf", "--json"))["recipe"] as? [String: Any])?["sha256"] as? String)
    var r = try w.run("registry", "revoke", hash, "--reason", "replaced upstream", "--key", w.k("revocation"), "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try w.run("update-registry").status == 0)
    r = try w.run("show", "fzf")
    #expect(r.status == 4)
    var p = try metrics(w)
    #expect(p.value("tsuku_revocation_refusals_total", ["kind": "recipe"]) == 1)
    #expect(p.sum("tsuku_verification_failures_total") == 0)
    #expect(try w.run("show", "fzf").status == 4)
    #expect(try w.run("show", "jq").status == 0)
    p = try metrics(w)
    #expect(p.value("tsuku_revocation_refusals_total", ["kind": "recipe"]) == 2)
  }

  @Test("TSUKU_METRICS_FILE is replaced atomically after every command, also a failing one")
  func metricsFileIsWrittenAtomically() throws {
    let w = try CLIWorld()
    try w.setUp()
    let dir = w.dir.file("textfile")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let file = dir + "/tsuku.prom"
    let env = ["TSUKU_METRICS_FILE": file]
    var r = try w.run("update-registry", env: env)
    #expect(r.status == 0, "\(r.stderr)")
    let first = try PrometheusText(try String(contentsOfFile: file, encoding: .utf8))
    #expect((first.value("tsuku_fetched_objects_total", ["backend": "file", "what": "blob"]) ?? 0) > 0)
    // A second name for the file as it is now: a file rewritten in place would change under
    // it too; one renamed into place leaves it as it was.
    let old = dir + "/old.prom"
    try FileManager.default.linkItem(atPath: file, toPath: old)
    let oldBytes = try Data(contentsOf: URL(fileURLWithPath: old))
    let inode = { (p: String) throws -> UInt64 in
      try #require((try FileManager.default.attributesOfItem(atPath: p))[.systemFileNumber] as? UInt64)
    }
    let before = try inode(file)
    r = try w.run("show", "no-such-recipe", env: env)
    #expect(r.status == 3, "\(r.stderr)")
    #expect(try inode(file) != before)
    #expect(try Data(contentsOf: URL(fileURLWithPath: old)) == oldBytes)
    let text = try String(contentsOfFile: file, encoding: .utf8)
    _ = try PrometheusText(text)
    #expect(text == (try w.run("metrics")).out)
    // A usage error (exit 64) and an argument error are commands too.
    let second = try inode(file)
    #expect(try w.run("plan", "fzf", "--platform", "Not A Platform", env: env).status == 64)
    #expect(try inode(file) != second)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["old.prom", "tsuku.prom"])
    // A file that cannot be written is a warning; the command's own status stands.
    r = try w.run("show", "jq", env: ["TSUKU_METRICS_FILE": w.dir.file("no-such-dir/tsuku.prom")])
    #expect(r.status == 0)
    #expect(r.stderr.contains("warning: TSUKU_METRICS_FILE: cannot write '\(w.dir.file("no-such-dir/tsuku.prom"))'"), "\(r.stderr)")
    // Without the variable no file is written.
    try FileManager.default.removeItem(atPath: file)
    #expect(try w.run("show", "jq").status == 0)
    #expect(!FileManager.default.fileExists(atPath: file))
  }

  @Test("--help documents TSUKU_METRICS_FILE and names each variable once")
  func helpNamesEachVariableOnce() throws {
    let w = try CLIWorld()
    let r = try w.run("--help")
    #expect(r.status == 0)
    for v in ["TSUKU_METRICS_FILE", "TSUKU_GIT_HISTORY_DAYS", "TSUKU_HOME", "TSUKU_SOURCES"] {
      #expect(r.out.components(separatedBy: "  \(v) ").count == 2, "\(v)")
    }
    #expect(r.out.contains("node_exporter's textfile collector"))
    #expect(try w.run("metrics", "--help").out.contains("TSUKU_METRICS_FILE=PATH"))
  }

  @Test("tsuku info shows category, source, index version, cache age and the median of the last 10 fetches")
  func infoShowsWhereAndHowFresh() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    var r = try w.run("info", "fzf", "--json", "--offline")
    #expect(r.status == 0, "\(r.stderr)")
    var info = try json(r)
    #expect(info["category"] as? String == "community")
    #expect(info["source"] as? String == w.store)
    #expect(info["index_version"] as? Int == 1)
    let age = try #require(info["cache_age_seconds"] as? Int)
    #expect(age >= 0 && age < 600)
    // The median of the ring the home keeps.
    let home = Home(path: w.dir.file("home"))
    let ring = try home.readMetrics().recent.map(\.seconds).sorted()
    #expect(ring.count >= 2 && ring.count <= 10)
    let median = ring.count % 2 == 1 ? ring[ring.count / 2] : (ring[ring.count / 2 - 1] + ring[ring.count / 2]) / 2
    // Through JSON the value may differ in the last bit: equal within a nanosecond.
    let shown = try #require(info["median_fetch_latency_seconds"] as? Double)
    #expect(abs(shown - median) < 1e-9)
    #expect(info["median_fetch_latency_fetches"] as? Int == ring.count)
    // Twelve fetches: two slow ones, then 1..10 ms. Only the last ten count: 5.5 ms.
    var state = try home.readMetrics()
    var twelve = MetricsState()
    for ms in [900.0, 800.0] + (1...10).map(Double.init) {
      twelve.recent = [FetchRecord(backend: "s3", op: "blob", seconds: ms / 1000, bytes: 100, time: "2026-11-01T00:00:00Z")]
      state.add(twelve)
    }
    try home.writeMetrics(state)
    r = try w.run("info", "fzf", "--json", "--offline")
    info = try json(r)
    #expect(abs((info["median_fetch_latency_seconds"] as? Double ?? 0) - 0.0055) < 1e-9)
    #expect(info["median_fetch_latency_fetches"] as? Int == 10)
    r = try w.run("info", "fzf", "--offline")
    #expect(r.status == 0)
    for line in ["category:      community", "source:        \(w.store)", "index version: 1", "cache age:     ",
      "fetch latency: 5.5 ms, the median of the last 10 fetches"]
    {
      #expect(r.out.contains(line), "\(line)\n\(r.out)")
    }
  }

  // MARK: S3

  struct Bucket {
    let w: CLIWorld
    let url: String
    var admin: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    }
    var reader: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.reader.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.reader.secretAccessKey]
    }
  }

  /// The sample published to a fresh bucket of a real SeaweedFS, and a client home that trusts it;
  /// every command's output is kept in `outputs`.
  func bucket(_ outputs: inout [String], env extra: [String: String] = [:]) throws -> Bucket {
    let server: S3TestServer
    do { server = try S3TestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let name = try server.makeBucket(prefix: "metrics")
    let w = try CLIWorld()
    let b = Bucket(w: w, url: "s3://\(name)/reg?endpoint=\(server.endpoint)&region=us-east-1")
    let sample = checkout + "/registry-index/source"
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    func run(_ args: String..., env: [String: String] = [:]) throws -> CommandResult {
      let r = try runTsuku(args, env: w.env.merging(env) { $1 }.merging(extra) { $1 }, binary: w.bin)
      outputs += [r.out, r.stderr]
      #expect(r.status == 0, "\(args) \(r.stderr)")
      return r
    }
    for role in ["root", "index", "revocation"] { _ = try run("registry", "keygen", "--out", w.k(role)) }
    _ = try run(
      "registry", "init", "--to", b.url, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"), env: b.admin)
    _ = try run(
      "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden", sample + "/golden",
      "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--to", b.url, env: b.admin)
    let store = server.store(bucket: name, prefix: "reg")
    try #require(try store.readDocument(.root(1), maxSize: 1 << 20)).write(to: URL(fileURLWithPath: w.dir.file("root.json")))
    _ = try run("init", "--root", w.dir.file("root.json"), "--source", b.url, env: b.reader)
    return b
  }

  @Test("a sync from a real SeaweedFS counts under backend s3 what update-registry --json reports")
  func syncFromSeaweedFSIsCountedUnderS3() throws {
    var outputs = [String]()
    let b = try bucket(&outputs)
    let r = try b.w.run("update-registry", "--json", env: b.reader)
    #expect(r.status == 0, "\(r.stderr)")
    let report = try json(r)
    let p = try metrics(b.w)
    #expect(p.value("tsuku_fetched_objects_total", ["backend": "s3", "what": "blob"]) == Double(try #require(report["fetched_objects"] as? Int)))
    #expect(p.value("tsuku_fetched_bytes_total", ["backend": "s3", "what": "blob"]) == Double(try #require(report["fetched_bytes"] as? Int)))
    #expect(p.sum("tsuku_fetch_duration_seconds_count", matching: ["backend": "s3"]) >= 2)
    #expect(p.sum("tsuku_fetch_errors_total") == 0)
    #expect(p.labelValues["backend"] == ["s3"])
  }

  @Test("secrets are never in metrics, logs or the audit log, also when the secret is wrong")
  func secretsNeverInMetricsLogsOrAudit() throws {
    var outputs = [String]()
    let wrong = "wrong-secret-7c1f3a9e5d"
    let textfile = "/metrics.prom"
    let b = try bucket(&outputs)
    let env = b.reader.merging(["TSUKU_METRICS_FILE": b.w.dir.path + textfile]) { $1 }
    func run(_ args: String..., env: [String: String], status: Int32? = 0) throws -> CommandResult {
      let r = try runTsuku(args, env: b.w.env.merging(env) { $1 }, binary: b.w.bin)
      outputs += [r.out, r.stderr]
      if let status { #expect(r.status == status, "\(args) \(r.stderr)") }
      return r
    }
    _ = try run("update-registry", env: env)
    _ = try run("show", "fzf", env: env)
    _ = try run("plan", "fzf", "--platform", "linux-amd64", env: env)
    _ = try run("info", "fzf", env: env)
    _ = try run("info", "fzf", "--json", env: env)
    _ = try run("list", env: env)
    _ = try run("verify", env: env)
    _ = try run("cache", "info", env: env)
    _ = try run("audit", env: env)
    _ = try run("metrics", env: env)
    _ = try run("metrics", "--json", env: env)
    // The error path: a wrong secret, on a sync and on a read that must fetch.
    let bad = env.merging(["TSUKU_S3_SECRET_ACCESS_KEY": wrong]) { $1 }
    var r = try run("update-registry", "--force", env: bad, status: nil)
    #expect(r.status != 0)
    #expect(r.stderr.contains("is wrong"), "\(r.stderr)")
    r = try run("plan", "jq", "--platform", "linux-amd64", "--force", env: bad, status: nil)
    r = try run("registry", "publish", "--recipes", checkout + "/registry-index/source/recipes", "--key", b.w.k("index"), "--to", b.url,
      env: ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": wrong, "TSUKU_METRICS_FILE": b.w.dir.path + textfile],
      status: nil)
    #expect(r.status != 0)
    let p = try metrics(b.w)
    #expect(p.sum("tsuku_fetch_errors_total", matching: ["backend": "s3"]) >= 1)
    _ = try run("audit", "--json", env: env)

    // Every place a secret could leak to.
    let home = b.w.dir.file("home")
    var files = [b.w.dir.path + textfile, home + "/metrics.state.0", home + "/metrics.state.1", home + "/store-audit.log", home + "/cache/access.log", home + "/cache/meta.json",
      home + "/config.toml"]
    files += ((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []).filter { $0.hasPrefix("store-audit.log.") }.map { home + "/" + $0 }
    var texts = outputs
    for f in files {
      guard let d = FileManager.default.contents(atPath: f) else {
        #expect(!f.hasSuffix("metrics.state.0") && !f.hasSuffix("audit.log") && !f.hasSuffix(".prom"), "\(f) is missing")
        continue
      }
      texts.append(String(decoding: d, as: UTF8.self))
    }
    #expect(texts.joined().contains("tsuku_fetched_bytes_total"))  // the metrics really are among them
    var secrets = [S3TestServer.admin.secretAccessKey, S3TestServer.reader.secretAccessKey, wrong]
    for role in ["root", "index", "revocation"] {
      let key = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: b.w.k(role)))) as? [String: Any]
      secrets.append(try #require(key?["private"] as? String))
    }
    for secret in secrets {
      for (i, t) in texts.enumerated() { #expect(!t.contains(secret), "a secret in output or file \(i)") }
    }
  }
}
