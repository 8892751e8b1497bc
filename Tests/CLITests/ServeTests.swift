import Foundation
import Store
import Sync
import Testing
import TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// `tsuku serve`: the real `tsuku-serve` started on port 0 over a home synced from the sample
/// registry (a directory store), driven by raw HTTP/1.1 and by the Go client's own registry
/// code. The attacks are named tests.
@Suite(.serialized) struct ServeTests {
  static let sample = checkout + "/registry-index/source"

  /// The sample published with a revocation key, a home synced from it.
  final class World: @unchecked Sendable {
    let w = try! CLIWorld()
    var home: String { w.dir.file("home") }

    init() throws {
      try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
      for role in ["root", "index", "revocation"] { try #require(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
      var r = try w.run(
        "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
        "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
      try #require(r.status == 0, "\(r.stderr)")
      r = try w.run(
        "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden",
        sample + "/golden", "--key", w.k("index"), "--revocation-key", w.k("revocation"), "--to", w.store)
      try #require(r.status == 0, "\(r.stderr)")
      r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
      try #require(r.status == 0, "\(r.stderr)")
      r = try w.run("update-registry")
      try #require(r.status == 0, "\(r.stderr)")
    }

    /// Every recipe of the sample: name → exact bytes.
    static func recipes() throws -> [String: Data] {
      var out = [String: Data]()
      let fm = FileManager.default
      for letter in try fm.contentsOfDirectory(atPath: sample + "/recipes") where !letter.contains(".") {
        for f in try fm.contentsOfDirectory(atPath: sample + "/recipes/" + letter) where f.hasSuffix(".toml") {
          out[String(f.dropLast(5))] = fm.contents(atPath: sample + "/recipes/\(letter)/\(f)")
        }
      }
      for f in try fm.contentsOfDirectory(atPath: sample + "/embedded") where f.hasSuffix(".toml") {
        out[String(f.dropLast(5))] = fm.contents(atPath: sample + "/embedded/" + f)
      }
      return out
    }
  }

  // MARK: the Go client against the server

  @Test(.enabled(if: RegistryPeer.available || ProcessInfo.processInfo.environment["CI"] == "true"))
  func goClientReadsEveryRecipeByteIdenticalAndTheManifest() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env)
    defer { s.stop() }
    let all = try World.recipes()
    let peerHome = x.w.dir.file("go-home")
    var mismatched = [String]()
    for (name, bytes) in all.sorted(by: { $0.key < $1.key }) {
      let got = try RegistryPeer.run(["get", name], registry: s.base, manifestURL: s.base + "/recipes.json", home: peerHome)
      let fetched = try RegistryPeer.run(["fetch", name], registry: s.base, manifestURL: s.base + "/recipes.json", home: peerHome)
      if got.status != 0 || got.stdout != bytes || fetched.status != 0 || fetched.stdout != bytes {
        mismatched.append("\(name): get \(got.status) \(got.stderr) fetch \(fetched.status) \(fetched.stderr)")
      }
    }
    #expect(mismatched.isEmpty, "\(mismatched.prefix(5))")
    let manifest = try RegistryPeer.run(["manifest"], registry: s.base, manifestURL: s.base + "/recipes.json", home: peerHome)
    #expect(manifest.status == 0, "\(manifest.stderr)")
    let lines = String(decoding: manifest.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
    #expect(lines.first == String(all.count))
    #expect(Set(lines.dropFirst()) == Set(all.keys))
    // The manifest is tsuku's generator's document for the verified recipes.
    let served = try HTTP.get(s.port, "/recipes.json")
    let expected = GoLayout.manifest(
      all.values.compactMap { GoLayout.manifestRecipe($0) }, generatedAt: try #require(GoLayoutTimes.generatedAt(served.body)))
    #expect(served.body == expected)
    #expect(try HTTP.get(s.port, "/_site/recipes.json").body == expected)
  }

  @Test(.enabled(if: RegistryPeer.available || ProcessInfo.processInfo.environment["CI"] == "true"))
  func aRevokedRecipeAnswers410WithTheReasonAndTheGoClientReturnsNoOtherRecipe() throws {
    let x = try World()
    let fzf = SHA256.hash(try #require(FileManager.default.contents(atPath: Self.sample + "/recipes/f/fzf.toml"))).hex
    var r = try x.w.run(
      "registry", "revoke", fzf, "--reason", "compromised upstream tarball", "--key", x.w.k("revocation"), "--to", x.w.store)
    try #require(r.status == 0, "\(r.stderr)")
    r = try x.w.run("update-registry", "--force")
    try #require(r.status == 0, "\(r.stderr)")
    let s = try ServeProcess(env: x.w.env)
    defer { s.stop() }
    let got = try HTTP.get(s.port, "/recipes/f/fzf.toml")
    #expect(got.status == 410)
    #expect(got.text.contains("revoked: compromised upstream tarball"), "\(got.text)")
    #expect(!got.text.contains("[metadata]"))
    let peer = try RegistryPeer.run(
      ["get", "fzf"], registry: s.base, manifestURL: s.base + "/recipes.json", home: x.w.dir.file("go-home"))
    #expect(peer.status != 0)
    #expect(peer.stdout.isEmpty, "the Go client returned a recipe for a revoked name")
    let manifest = try RegistryPeer.run(["manifest"], registry: s.base, manifestURL: s.base + "/recipes.json", home: x.w.dir.file("go-home"))
    #expect(!String(decoding: manifest.stdout, as: UTF8.self).split(separator: "\n").contains("fzf"))
    // Another recipe is still served.
    #expect(try HTTP.get(s.port, "/recipes/r/ripgrep.toml").status == 200)
  }

  // MARK: answers

  @Test func etagAnswers304AndHeadHasNoBodyAndKeepAliveServesTwoRequests() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env)
    defer { s.stop() }
    let bytes = try #require(FileManager.default.contents(atPath: Self.sample + "/recipes/f/fzf.toml"))
    let got = try HTTP.get(s.port, "/recipes/f/fzf.toml")
    #expect(got.status == 200)
    #expect(got.body == bytes)
    let etag = "\"sha256:\(SHA256.hash(bytes).hex)\""
    #expect(got.headers["etag"] == etag)
    let again = try HTTP.get(s.port, "/recipes/f/fzf.toml", headers: ["If-None-Match": etag])
    #expect(again.status == 304)
    #expect(again.body.isEmpty)
    let other = try HTTP.get(s.port, "/recipes/f/fzf.toml", headers: ["If-None-Match": "\"sha256:00\""])
    #expect(other.status == 200)
    let head = try HTTP.request(s.port, "HEAD /recipes/f/fzf.toml HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    #expect(head.status == 200)
    #expect(head.headers["content-length"] == String(bytes.count))
    #expect(head.body.isEmpty)
    // Keep-alive: two requests on one connection, both answered.
    let raw = try HTTP.exchange(
      s.port,
      "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /recipes/f/fzf.toml HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    #expect(raw.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(raw.prefix(300))")
    // A golden file at its bucket path, and /healthz and /metrics.
    let plan = try HTTP.get(s.port, "/plans/embedded/ca-certificates/v2025-12-02/linux-amd64.json")
    #expect(plan.status == 200)
    #expect(
      plan.body
        == FileManager.default.contents(
          atPath: Self.sample + "/golden/embedded/ca-certificates/v2025-12-02-linux-amd64.json"))
    let health = try HTTP.get(s.port, "/healthz")
    #expect(health.status == 200)
    #expect(health.text.contains("index version 1"))
    let metrics = try HTTP.get(s.port, "/metrics")
    #expect(metrics.text.contains("tsuku_serve_requests_total{code=\"200\"}"))
    #expect(metrics.text.contains("tsuku_serve_index_version 1"))
    #expect(try HTTP.get(s.port, "/recipes/n/nosuchrecipe.toml").status == 404)
  }

  @Test func postIsRefused405WithAllow() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env)
    defer { s.stop() }
    for method in ["POST", "PUT", "DELETE"] {
      let r = try HTTP.request(s.port, "\(method) /recipes/f/fzf.toml HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
      #expect(r.status == 405)
      #expect(r.headers["allow"] == "GET, HEAD")
    }
  }

  @Test func jsonLogWritesOneObjectPerRequest() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env, args: ["--log-format", "json"])
    _ = try HTTP.get(s.port, "/recipes/f/fzf.toml")
    _ = try HTTP.get(s.port, "/recipes/n/nosuchrecipe.toml")
    s.stop()
    let lines = s.stderr().split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    let requests = lines.filter { $0["path"] != nil }
    #expect(requests.count == 2)
    let found = requests.first { $0["path"] as? String == "/recipes/f/fzf.toml" }
    let missing = requests.first { $0["path"] as? String == "/recipes/n/nosuchrecipe.toml" }
    #expect(found?["status"] as? Int == 200)
    #expect(found?["method"] as? String == "GET")
    #expect(missing?["status"] as? Int == 404)
    // Logged before the answer left: the lines are in the order of the requests.
    #expect(requests.first?["path"] as? String == "/recipes/f/fzf.toml")
  }

  // MARK: attacks

  @Test func attackTraversalAndEncodedTraversalAre400WithoutTouchingTheDisk() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env)
    defer { s.stop() }
    let paths = [
      "/recipes/f/../../cache/index.json", "/../../../etc/passwd", "/recipes/f/%2e%2e/%2e%2e/cache/index.json",
      "/recipes/f/%2e%2e%2f%2e%2e%2fetc%2fpasswd.toml", "/recipes%2ff%2ffzf.toml", "//etc/passwd",
      "/recipes//f/fzf.toml", "/recipes/f\\..\\..\\fzf.toml", "/recipes/f/fzf.toml%00", "/plans/f/fzf/v1/..%2f..%2fx.json",
      "/recipes/F/fzf.toml",
    ]
    // Each refused path is sent while the server is traced: not one file is opened for it.
    let trace = StraceAttach(pid: s.pid, file: x.w.dir.file("strace"))
    for p in paths {
      let r = try HTTP.request(s.port, "GET \(p) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
      #expect(r.status == 400, "\(p): \(r.status)")
      #expect(!r.text.contains("root:"), "\(p)")
    }
    if let opened = trace?.stop() {
      #expect(opened.isEmpty, "files opened for refused paths: \(opened)")
      // The tracer does see this server's file opens: /metrics reads the home's metrics files.
      let control = StraceAttach(pid: s.pid, file: x.w.dir.file("strace-control"))
      #expect(try HTTP.get(s.port, "/metrics").status == 200)
      #expect(control?.stop()?.isEmpty == false)
    }
  }

  @Test func attackTamperedCachedBlobIsNeverServed() throws {
    let x = try World()
    let bytes = try #require(FileManager.default.contents(atPath: Self.sample + "/recipes/f/fzf.toml"))
    let id = SHA256.hash(bytes)
    // Online: the cached copy damaged while serving; fetched again from the source, verified,
    // served byte-identical.
    let s = try ServeProcess(env: x.w.env)
    #expect(try tamperCachedBlob(cacheDir: x.home + "/cache", id: id))
    let good = try HTTP.get(s.port, "/recipes/f/fzf.toml")
    #expect(good.status == 200)
    #expect(good.body == bytes)
    #expect(try HTTP.get(s.port, "/metrics").text.contains("tsuku_serve_refetches_total 1"))
    s.stop()
    // Offline: damaged again, no source to fetch it from: 500, never the bad bytes.
    let offline = try ServeProcess(env: x.w.env, args: ["--offline"])
    defer { offline.stop() }
    #expect(try tamperCachedBlob(cacheDir: x.home + "/cache", id: id))
    let bad = try HTTP.get(offline.port, "/recipes/f/fzf.toml")
    #expect(bad.status == 500)
    #expect(!bad.text.contains("[metadata]"))
    #expect(!bad.body.contains(bytes.prefix(20)))
    // The rest of the registry is still served.
    #expect(try HTTP.get(offline.port, "/recipes/r/ripgrep.toml").status == 200)
  }

  @Test func attackExpiredIndexAnswers503WithRetryAfter() throws {
    // An index signed to expire a few seconds after the sync: the fixture publishes it as of
    // a day ago with a one-day expiry.
    let f = try RegistryFixture()
    let storePath = f.dir.file("store")
    let store = DirectoryStore(path: storePath)
    try f.initialize(store)
    let input = try f.writeInput(recipes: ["fzf": RegistryFixture.recipe("fzf")])
    let lifetime = 12.0
    try f.publish(input, to: store, at: Date().addingTimeInterval(-86400 + lifetime), expiresDays: 1)
    let expiry = Date().addingTimeInterval(lifetime)
    try f.root.bytes.write(to: URL(fileURLWithPath: f.dir.file("root.json")))
    let env = ["TSUKU_HOME": f.dir.file("home"), "HOME": f.dir.path]
    let bin = tsukuBinary(checkout: checkout)
    var r = try runTsuku(["init", "--root", f.dir.file("root.json"), "--source", "file://" + storePath], env: env, binary: bin)
    try #require(r.status == 0, "\(r.stderr)")
    r = try runTsuku(["update-registry"], env: env, binary: bin)
    try #require(r.status == 0, "\(r.stderr)")
    let s = try ServeProcess(env: env)
    defer { s.stop() }
    let before = try HTTP.get(s.port, "/recipes/f/fzf.toml")
    try #require(Date() < expiry, "the machine was too slow to serve before the index expired")
    #expect(before.status == 200)
    Thread.sleep(forTimeInterval: max(0, expiry.timeIntervalSinceNow) + 1)
    let after = try HTTP.get(s.port, "/recipes/f/fzf.toml")
    #expect(after.status == 503)
    #expect(after.headers["retry-after"] != nil)
    #expect(after.text.contains("expired"))
    #expect(!after.text.contains("[metadata]"))
    #expect(try HTTP.get(s.port, "/recipes.json").status == 503)
    #expect(try HTTP.get(s.port, "/healthz").status == 503)
  }

  @Test func attackHugeRequestHeadIsRefusedWithABoundedAnswer() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env)
    defer { s.stop() }
    let big = String(repeating: "a", count: 1 << 20)
    let header = try HTTP.exchange(s.port, "GET /recipes/f/fzf.toml HTTP/1.1\r\nHost: t\r\nX-Big: \(big)\r\n\r\n")
    #expect(header.hasPrefix("HTTP/1.1 431"), "\(header.prefix(80))")
    let uri = try HTTP.exchange(s.port, "GET /\(big) HTTP/1.1\r\nHost: t\r\n\r\n")
    #expect(uri.hasPrefix("HTTP/1.1 431"), "\(uri.prefix(80))")
    // Many small headers, under the byte bound but past the count bound.
    let many = (0..<200).map { "X-\($0): v\r\n" }.joined()
    let count = try HTTP.exchange(s.port, "GET /recipes/f/fzf.toml HTTP/1.1\r\nHost: t\r\n\(many)\r\n")
    #expect(count.hasPrefix("HTTP/1.1 4"), "\(count.prefix(80))")
    #expect(try HTTP.get(s.port, "/healthz").status == 200)
  }

  @Test func attackSlowRequestHeadIsClosedWithinTheBound() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env, args: ["--request-timeout", "1"])
    defer { s.stop() }
    let fd = try HTTP.connect(s.port)
    defer { close(fd) }
    try HTTP.send(fd, "GET /recipes/f/fzf.toml HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    let start = Date()
    let answer = HTTP.readAll(fd, timeout: 10)
    let took = Date().timeIntervalSince(start)
    #expect(took < 3, "closed after \(took) s")
    #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(60))")
  }

  @Test func connectionsBeyondTheCapAreClosed() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env, args: ["--max-connections", "2"])
    defer { s.stop() }
    let a = try HTTP.connect(s.port)
    let b = try HTTP.connect(s.port)
    defer {
      close(a)
      close(b)
    }
    Thread.sleep(forTimeInterval: 0.2)
    let c = try HTTP.connect(s.port)
    defer { close(c) }
    try? HTTP.send(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    #expect(HTTP.readAll(c, timeout: 5).isEmpty)
    try HTTP.send(a, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    #expect(HTTP.readAll(a, timeout: 5).hasPrefix("HTTP/1.1 200"))
  }

  @Test func sigtermStopsAcceptingFinishesAndExitsZero() throws {
    let x = try World()
    let s = try ServeProcess(env: x.w.env)
    #expect(try HTTP.get(s.port, "/healthz").status == 200)
    // A kept-alive idle connection does not hold the stop.
    let idle = try HTTP.connect(s.port)
    defer { close(idle) }
    kill(s.pid, SIGTERM)
    let status = s.wait(timeout: 10)
    #expect(status == 0)
    #expect((try? HTTP.connect(s.port)) == nil)
  }

  // MARK: the command

  @Test func serveHelpIsCompleteAndTsukuDoesNotLinkTheServer() throws {
    let w = try CLIWorld()
    let help = try w.run("serve", "--help")
    #expect(help.status == 0)
    for option in ["--listen", "--allow-remote", "--log-format", "--max-connections", "--max-head-bytes", "--request-timeout"] {
      #expect(help.out.contains(option), "\(option)")
    }
    // The server library lives only in tsuku-serve: the tsuku binary has none of NIO's symbols
    // (Swift packages are linked statically, so a linked NIO would show up here, not in ldd).
    let tsuku = try #require(FileManager.default.contents(atPath: w.bin))
    let serve = try #require(FileManager.default.contents(atPath: ServeProcess.binary))
    let marker = Data("7NIOCore".utf8)
    #expect(tsuku.range(of: marker) == nil)
    #expect(serve.range(of: marker) != nil)
    let ldd = try runTsuku(["-c", "ldd \(w.bin)"], env: [:], binary: "/bin/sh")
    #expect(!ldd.out.lowercased().contains("nio"))
  }

  @Test func aNonLoopbackAddressNeedsAllowRemoteAndAMissingServerSaysHowToBuildIt() throws {
    let w = try CLIWorld()
    let r = try w.run("serve", "--listen", "0.0.0.0:0")
    #expect(r.status == 64)
    #expect(r.stderr.contains("--allow-remote"))
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    // tsuku alone in a folder: one line saying how to build the server.
    let lone = w.dir.file("bin/tsuku")
    try FileManager.default.createDirectory(atPath: w.dir.file("bin"), withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: w.bin, toPath: lone)
    let missing = try runTsuku(["serve"], env: w.env, binary: lone)
    #expect(missing.status != 0)
    #expect(missing.stderr.contains("swift build -c release --product tsuku-serve"), "\(missing.stderr)")
    #expect(missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
  }
}

/// recipes.json's generated_at, read back to rebuild the expected document.
enum GoLayoutTimes {
  static func generatedAt(_ manifest: Data) -> Date? {
    guard let o = try? JSONSerialization.jsonObject(with: manifest) as? [String: Any], let s = o["generated_at"] as? String
    else { return nil }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: s)
  }
}

/// The real tsuku-serve, started through `tsuku serve` on port 0; its stderr in a file.
final class ServeProcess: @unchecked Sendable {
  static var binary: String { (tsukuBinary(checkout: checkout) as NSString).deletingLastPathComponent + "/tsuku-serve" }
  let process = Process()
  let port: Int
  let logPath: String
  var pid: Int32 { process.processIdentifier }
  var base: String { "http://127.0.0.1:\(port)" }

  init(env: [String: String], args: [String] = []) throws {
    process.executableURL = URL(fileURLWithPath: tsukuBinary(checkout: checkout))
    process.arguments = ["serve", "--listen", "127.0.0.1:0"] + args
    var e = env
    e["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    process.environment = e
    logPath = NSTemporaryDirectory() + "/tsuku-serve-\(UUID().uuidString).log"
    FileManager.default.createFile(atPath: logPath, contents: nil)
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    let out = Pipe()
    process.standardOutput = out
    process.standardInput = FileHandle.nullDevice
    try process.run()
    var line = Data()
    let deadline = Date().addingTimeInterval(60)
    while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
      let d = out.fileHandleForReading.availableData
      if d.isEmpty { break }
      line.append(d)
    }
    let text = String(decoding: line, as: UTF8.self)
    guard let r = text.range(of: "listening on http://127.0.0.1:"),
      let p = Int(text[r.upperBound...].prefix { $0.isNumber })
    else {
      process.terminate()
      throw TsukuError(.other, "tsuku serve did not start: \(text) \(String(decoding: FileManager.default.contents(atPath: logPath) ?? Data(), as: UTF8.self))")
    }
    port = p
  }

  func stderr() -> String { String(decoding: FileManager.default.contents(atPath: logPath) ?? Data(), as: UTF8.self) }

  @discardableResult
  func wait(timeout: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { return nil }
    return process.terminationStatus
  }

  func stop() {
    if process.isRunning { kill(pid, SIGTERM) }
    if wait(timeout: 10) == nil { kill(pid, SIGKILL) }
  }

  deinit {
    stop()
    try? FileManager.default.removeItem(atPath: logPath)
  }
}

/// `strace -p PID -e openat` for the time of a few requests: the files opened (nil when strace
/// cannot attach here).
final class StraceAttach {
  let p = Process()
  let file: String

  init?(pid: Int32, file: String) {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else { return nil }
    self.file = file
    // Through python3, which clears the signal mask the test process's thread would pass on
    // (with SIGTERM blocked, strace could not be stopped and write out its trace).
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [
      "python3", "-c",
      "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])",
      "/usr/bin/strace", "-f", "-qq", "-e", "trace=open,openat,openat2,stat,newfstatat,statx", "-o", file, "-p",
      String(pid),
    ]
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    // Attached when the kernel names a tracer of the process (within 10 s on a loaded machine).
    let deadline = Date().addingTimeInterval(10)
    while p.isRunning && Date() < deadline && !Self.traced(pid) { usleep(20_000) }
    if !p.isRunning || !Self.traced(pid) {
      kill(p.processIdentifier, SIGKILL)
      return nil
    }
  }

  /// Whether /proc says every thread of the process has a tracer.
  static func traced(_ pid: Int32) -> Bool {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !tasks.isEmpty else {
      return false
    }
    return tasks.allSatisfy { task in
      guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else {
        return false
      }
      return status.split(separator: "\n").contains {
        $0.hasPrefix("TracerPid:") && $0.split(separator: "\t").last.map { $0 != "0" } == true
      }
    }
  }

  func stop() -> [String]? {
    Thread.sleep(forTimeInterval: 0.3)
    kill(p.processIdentifier, SIGTERM)
    let deadline = Date().addingTimeInterval(10)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
      kill(p.processIdentifier, SIGKILL)
      return nil
    }
    guard let text = FileManager.default.contents(atPath: file) else { return nil }
    return String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init).filter {
      $0.contains("(") && !$0.contains("resumed") || $0.contains("\"")
    }
  }
}

/// A raw HTTP/1.1 client: exact request bytes (no normalisation of the path), whole answers.
enum HTTP {
  struct Answer {
    let status: Int
    let headers: [String: String]
    let body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
  }

  static func get(_ port: Int, _ path: String, headers: [String: String] = [:]) throws -> Answer {
    let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
    return try request(port, "GET \(path) HTTP/1.1\r\nHost: t\r\n\(extra)Connection: close\r\n\r\n")
  }

  static func request(_ port: Int, _ raw: String) throws -> Answer {
    let fd = try connect(port)
    defer { close(fd) }
    try send(fd, raw)
    let data = readAllData(fd, timeout: 30)
    guard let split = data.range(of: Data("\r\n\r\n".utf8)) else {
      throw TsukuError(.other, "no HTTP answer: \(String(decoding: data, as: UTF8.self))")
    }
    let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let status = Int(head[0].split(separator: " ")[1]) ?? 0
    var headers = [String: String]()
    for line in head.dropFirst() {
      guard let c = line.firstIndex(of: ":") else { continue }
      headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
    }
    return Answer(status: status, headers: headers, body: Data(data[split.upperBound...]))
  }

  static func exchange(_ port: Int, _ raw: String) throws -> String {
    let fd = try connect(port)
    defer { close(fd) }
    try? send(fd, raw)
    return readAll(fd, timeout: 30)
  }

  static func connect(_ port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let r = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if r != 0 {
      close(fd)
      throw TsukuError(.unavailable, "cannot connect to 127.0.0.1:\(port)")
    }
    return fd
  }

  static func send(_ fd: Int32, _ s: String) throws {
    signal(SIGPIPE, SIG_IGN)
    var bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
      let n = bytes.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { throw TsukuError(.other, "send failed") }
      off += n
    }
  }

  static func readAll(_ fd: Int32, timeout: Double) -> String { String(decoding: readAllData(fd, timeout: timeout), as: UTF8.self) }

  /// Reads until the peer closes (or `timeout` seconds).
  static func readAllData(_ fd: Int32, timeout: Double) -> Data {
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var out = Data()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = recv(fd, &buf, buf.count, 0)
      if n <= 0 { break }
      out.append(contentsOf: buf[0..<n])
    }
    return out
  }
}
