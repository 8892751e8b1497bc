import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// The libcurl transport against real sockets on 127.0.0.1: the same faults as the scripted
/// transport, as a server really produces them.
@Suite(.serialized) struct LoopbackTransportTests {
  @Test func closedPortIsConnectionRefused() {
    let port = LoopbackServer.closedPort()
    let t = CurlTransport(options: quickOptions())
    let url = "http://127.0.0.1:\(port)/x"
    let e = failure(t.perform([HTTPRequest("GET", url)])[0])
    #expect(e?.code == .unavailable)
    #expect(e?.message == "GET '\(url)': connection refused")
    #expect(e?.code.exitCode == 5)
    #expect(t.requestCount == 3)
  }

  @Test func hangingServerTimesOut() throws {
    let server = try LoopbackServer { _ in .hang }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions(total: 1))
    let start = Date()
    let e = failure(t.perform([HTTPRequest("GET", server.url + "/slow")])[0])
    #expect(e?.code == .unavailable)
    #expect(e?.message == "GET '\(server.url)/slow': no complete answer within 1 s")
    #expect(Date().timeIntervalSince(start) < 3)
    // The budget's end is never retried: the last attempt is the one that timed out. On a
    // loaded machine (the whole suite in parallel) an attempt before it may fail otherwise and
    // be retried within the budget, as in serviceUnavailableThenSuccess.
    #expect(t.requestCount >= 1 && t.requestCount <= 2, "\(t.requestCount) attempts")
  }

  @Test func stalledBodyIsDetectedAndRetried() throws {
    let server = try LoopbackServer { _ in .stall(sent: Data(count: 10), declared: 1000) }
    defer { server.stop() }
    var o = quickOptions(total: 30, stall: 1)
    o.retry.maxAttempts = 2
    let t = CurlTransport(options: o)
    let e = failure(t.perform([HTTPRequest("GET", server.url + "/stall")])[0])
    #expect(e?.code == .unavailable)
    #expect(e?.message.hasSuffix("stalled: no data for 1 s") == true, "\(String(describing: e))")
    #expect(server.requests.count == 2)
  }

  @Test func serviceUnavailableThenSuccess() throws {
    let seen = Atomic<Int>(0)
    let server = try LoopbackServer { _ in
      seen.add(1, ordering: .relaxed).newValue == 1
        ? .respond(503, headers: [("Retry-After", "0")]) : .respond(200, body: Data("ok".utf8))
    }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    let r = try t.perform(HTTPRequest("GET", server.url + "/flaky"))
    #expect(r.status == 200 && r.body == Data("ok".utf8))
    // The 503 was retried; on a loaded machine an attempt may also time out and be retried.
    #expect(server.requests.count >= 2)
    #expect(t.requestCount == server.requests.count)
  }

  @Test func notFoundIsOneRequest() throws {
    let server = try LoopbackServer { _ in .respond(404, body: Data("<Error><Code>NoSuchKey</Code></Error>".utf8)) }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    let store = HTTPStore(baseURL: server.url + "/reg", transport: t)
    #expect(errorCode { _ = try store.get(SHA256.hash("x"), maxSize: 10) } == .notFound)
    #expect(try store.readDocument(.index, maxSize: 10) == nil)
    #expect(server.requests.count == 2)
    #expect(server.requests.first?.path == "/reg/" + SHA256.hash("x").path)
  }

  @Test func truncatedBodyIsUnavailable() throws {
    let server = try LoopbackServer { _ in .truncate(sent: Data(count: 50), declared: 100) }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    let e = failure(t.perform([HTTPRequest("GET", server.url + "/cut")])[0])
    #expect(e?.code == .unavailable)
    #expect(e?.message.contains("the body was cut short") == true)
    #expect(server.requests.count == 3)
  }

  @Test func bodyLongerThanDeclaredIsCutOff() throws {
    let server = try LoopbackServer { _ in .respond(200, body: Data(count: 4 << 20)) }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    let e = failure(t.perform([HTTPRequest("GET", server.url + "/endless", maxResponseSize: 1000)])[0])
    #expect(e?.code == .integrity)
    #expect(e?.message == "GET '\(server.url)/endless': the body is longer than the 1000 bytes allowed; cut off")
    #expect(server.requests.count == 1)
  }

  /// A body handed to a sink as it arrives: none in the response; a truncated first attempt
  /// is retried and the sink restarted; a refusal aborts the transfer and is not retried.
  @Test func aSinkTakesTheBodyAndIsRestartedOnARetry() throws {
    let body = sampleData(count: 300_000, seed: 9)
    let seen = Atomic<Int>(0)
    let server = try LoopbackServer { [body] _ in
      seen.add(1, ordering: .relaxed).newValue == 1
        ? .truncate(sent: body.prefix(100_000), declared: body.count) : .respond(200, body: body)
    }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    let sink = CollectingSink()
    var req = HTTPRequest("GET", server.url + "/pack", maxResponseSize: body.count)
    req.sink = sink
    let r = try t.perform(req)
    #expect(r.status == 200 && r.body.isEmpty)
    #expect(sink.bytes == body)
    #expect(sink.restarts == 2)
    #expect(server.requests.count == 2)

    let refusing = CollectingSink(limit: 1000)
    req.sink = refusing
    let e = failure(t.perform([req])[0])
    #expect(e?.code == .integrity)
    #expect(e?.message == "GET '\(server.url)/pack': the body was refused where it was being stored")
    #expect(server.requests.count == 3)
  }

  @Test func flippedByteIsRefusedByTheStore() throws {
    let good = sampleData(count: 300, seed: 5)
    var bad = good
    bad[299] ^= 0x80
    let server = try LoopbackServer { [bad] _ in .respond(200, body: bad) }
    defer { server.stop() }
    let store = HTTPStore(baseURL: server.url, transport: CurlTransport(options: quickOptions()))
    #expect(errorCode { _ = try store.get(SHA256.hash(good), maxSize: 300) } == .integrity)
  }

  @Test func connectionsAreKeptAlive() throws {
    let server = try LoopbackServer { _ in .respond(200, body: Data("x".utf8)) }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    for i in 0..<5 { _ = try t.perform(HTTPRequest("GET", server.url + "/\(i)")) }
    #expect(server.requests.count == 5)
    #expect(server.connections == 1)
  }

  @Test func concurrencyIsBounded() throws {
    let inFlight = Mutex((now: 0, peak: 0))
    let server = try LoopbackServer { _ in
      inFlight.withLock {
        $0.now += 1; $0.peak = max($0.peak, $0.now)
      }
      usleep(30_000)
      inFlight.withLock { $0.now -= 1 }
      return .respond(200, body: Data("x".utf8))
    }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions(concurrent: 4))
    let results = t.perform((0..<24).map { HTTPRequest("GET", server.url + "/\($0)") })
    #expect(results.allSatisfy { (try? $0.get().status) == 200 })
    let peak = inFlight.withLock { $0.peak }
    #expect(peak <= 4 && peak >= 2)
    #expect(server.connections <= 4)
  }

  @Test func putSendsBodyAndHeaders() throws {
    let server = try LoopbackServer { _ in .respond(200, headers: [("ETag", "\"abc\"")]) }
    defer { server.stop() }
    let body = sampleData(count: 200_000, seed: 9)
    let t = CurlTransport(options: quickOptions())
    let r = try t.perform(
      HTTPRequest("PUT", server.url + "/k", headers: [("Content-Type", "application/octet-stream")], body: body))
    #expect(r.etag == "\"abc\"")
    let got = try #require(server.requests.first)
    #expect(got.method == "PUT" && got.body == body)
    #expect(got.headers["content-type"] == "application/octet-stream")
    #expect(got.headers["expect"] == nil)
  }

  @Test func unsignedRedirectsAreFollowed() throws {
    let server = try LoopbackServer { req in
      req.path == "/old"
        ? .respond(301, headers: [("Location", "/new")], body: Data("moved".utf8))
        : .respond(200, body: Data("here".utf8))
    }
    defer { server.stop() }
    let t = CurlTransport(options: quickOptions())
    #expect(try t.perform(HTTPRequest("GET", server.url + "/old")).body == Data("here".utf8))
    let signed = HTTPRequest(
      "GET", server.url + "/old", signing: AWSSigning(region: "auto", accessKeyID: "k", secretAccessKey: "s"))
    #expect(try t.perform(signed).status == 301)
  }

  @Test func httpsWithCustomCABundle() throws {
    guard HTTPSFileServer.available else { try Test.cancel("python3 or openssl is missing") }
    try withTemporaryDirectory { dir in
      let blob = Data("recipe over tls".utf8)
      try DirectoryStore(path: dir).apply(StoreChange(objects: [blob], documents: [(.index, Data("idx".utf8))]))
      let server = try HTTPSFileServer(root: dir)
      var o = quickOptions()
      o.caBundle = server.caBundle
      let store = HTTPStore(baseURL: server.url, transport: CurlTransport(options: o))
      #expect(try store.get(SHA256.hash(blob), maxSize: 100) == blob)
      #expect(try store.readDocument(.index, maxSize: 10) == Data("idx".utf8))
      #expect(errorCode { _ = try store.get(SHA256.hash("absent"), maxSize: 10) } == .notFound)
      // The system's CAs do not know the test certificate: refused, and not retried.
      let untrusted = CurlTransport(options: quickOptions())
      let e = thrown { _ = try HTTPStore(baseURL: server.url, transport: untrusted).readDocument(.index, maxSize: 10) }
      #expect(e?.code == .unavailable && e?.message.contains("': tls: ") == true, "\(String(describing: e))")
      #expect(untrusted.requestCount == 1)
      let viaEnv = try StoreURL.open(server.url, environment: ["TSUKU_CA_BUNDLE": server.caBundle])
      #expect(try viaEnv.get(SHA256.hash(blob), maxSize: 100) == blob)
    }
  }
}

/// Keeps what it is given, up to `limit` bytes (then refuses).
final class CollectingSink: BodySink, @unchecked Sendable {
  let limit: Int
  var bytes = Data()
  var restarts = 0
  init(limit: Int = .max) { self.limit = limit }
  func restart() {
    bytes = Data()
    restarts += 1
  }
  func write(_ b: UnsafeRawBufferPointer) -> Bool {
    if bytes.count + b.count > limit { return false }
    bytes.append(contentsOf: b)
    return true
  }
  var refusal: TsukuError? { nil }
}
