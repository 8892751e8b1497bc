import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// Retries and backoff that keep tests fast.
let quickRetry = RetryPolicy(maxAttempts: 3, baseDelay: 0.01, maxDelay: 0.05, retryAfterCap: 0.2)

func quickOptions(total: Double = 5, stall: Double = 15, concurrent: Int = 16) -> TransportOptions {
  var o = TransportOptions()
  o.totalTimeout = total
  o.connectTimeout = 2
  o.stallTimeout = stall
  o.retry = quickRetry
  o.maxConcurrent = concurrent
  return o
}

/// The error a failed result carries (a test failure if it succeeded).
func failure(_ r: Result<HTTPResponse, TsukuError>) -> TsukuError? {
  if case .failure(let e) = r { return e }
  Issue.record("expected a failure, got status \((try? r.get())?.status ?? 0)")
  return nil
}

/// The transport over scripted faults: what a store sees, and how often it asked.
@Suite struct ScriptedTransportTests {
  let url = "http://mirror.invalid/store/x"

  @Test func refusedIsRetriedThenUnavailable() {
    let t = ScriptedTransport(retry: quickRetry)
    t.enqueue([.refused, .refused, .refused])
    let e = failure(t.perform([HTTPRequest("GET", url)])[0])
    #expect(e?.code == .unavailable)
    #expect(e?.message == "GET '\(url)': connection refused")
    #expect(e?.details == ["tried 3 times"])
    #expect(t.requestCount == 3)
  }

  @Test func serviceUnavailableThenSuccessIsRetried() throws {
    let t = ScriptedTransport(retry: quickRetry)
    t.script(url, [.respond(503), .ok(Data("fine".utf8))])
    let r = try t.perform(HTTPRequest("GET", url))
    #expect(r.status == 200 && r.body == Data("fine".utf8))
    #expect(t.requestCount == 2)
    #expect(t.delays.count == 1)
  }

  @Test func retryAfterIsHonouredAndCapped() throws {
    let t = ScriptedTransport(retry: RetryPolicy(maxAttempts: 3, baseDelay: 5, maxDelay: 5, retryAfterCap: 10))
    t.script(
      url, [.respond(429, headers: ["Retry-After": "2"]), .respond(503, headers: ["Retry-After": "3600"]), .ok(Data())])
    #expect(try t.perform(HTTPRequest("GET", url)).status == 200)
    #expect(t.delays == [2, 10])
  }

  @Test(arguments: [404, 403, 410, 400])
  func clientErrorsAreNotRetried(_ status: Int) throws {
    let t = ScriptedTransport(retry: quickRetry)
    t.enqueue([.respond(status), .ok(Data())])
    #expect(try t.perform(HTTPRequest("GET", url)).status == status)
    #expect(t.requestCount == 1)
  }

  @Test func lastServerErrorIsReturnedAfterRetries() throws {
    let t = ScriptedTransport(retry: quickRetry)
    t.enqueue(Array(repeating: .respond(502), count: 5))
    #expect(try t.perform(HTTPRequest("GET", url)).status == 502)
    #expect(t.requestCount == 3)
  }

  @Test func timeoutIsNotRetriedButStallIs() throws {
    let t = ScriptedTransport(retry: quickRetry)
    t.enqueue([.timeout, .ok(Data())])
    let e = failure(t.perform([HTTPRequest("GET", url)])[0])
    #expect(e?.code == .unavailable && e?.message == "GET '\(url)': no complete answer within 30 s")
    #expect(t.requestCount == 1)
    let s = ScriptedTransport(retry: quickRetry)
    s.enqueue([.stall, .ok(Data("late".utf8))])
    #expect(try s.perform(HTTPRequest("GET", url)).body == Data("late".utf8))
    #expect(s.requestCount == 2)
  }

  @Test func truncatedBodyIsRetriedThenUnavailable() {
    let t = ScriptedTransport(retry: quickRetry)
    t.enqueue(Array(repeating: .truncated(sent: Data(count: 10), declared: 100), count: 3))
    let e = failure(t.perform([HTTPRequest("GET", url)])[0])
    #expect(e?.code == .unavailable)
    #expect(e?.message.contains("the body was cut short") == true)
    #expect(t.requestCount == 3)
  }

  @Test func bodyLongerThanDeclaredIsIntegrityAndNotRetried() {
    let t = ScriptedTransport(retry: quickRetry)
    t.enqueue([.ok(Data(count: 101)), .ok(Data(count: 100))])
    let e = failure(t.perform([HTTPRequest("GET", url, maxResponseSize: 100)])[0])
    #expect(e?.code == .integrity)
    #expect(e?.message == "GET '\(url)': the body is longer than the 100 bytes allowed; cut off")
    #expect(t.requestCount == 1)
  }

  @Test func httpStoreRefusesFlippedAndOversizedBlobs() throws {
    let good = sampleData(count: 64, seed: 3)
    let id = SHA256.hash(good)
    var flipped = good
    flipped[7] ^= 0x01
    let t = ScriptedTransport(retry: quickRetry)
    let store = HTTPStore(baseURL: "https://cdn.invalid/reg/", transport: t)
    let blobURL = "https://cdn.invalid/reg/" + id.path
    t.script(blobURL, [.ok(flipped), .ok(good + Data([0])), .notFound, .ok(good)])
    do {
      _ = try store.get(id, maxSize: 64)
      Issue.record("a flipped byte was accepted")
    } catch let e as TsukuError {
      #expect(e.code == .integrity && e.message.contains(id.hex))
    }
    #expect(errorCode { _ = try store.get(id, maxSize: 64) } == .integrity)
    #expect(errorCode { _ = try store.get(id, maxSize: 64) } == .notFound)
    #expect(try store.get(id, maxSize: 64) == good)
    #expect(t.requests.map(\.url) == Array(repeating: blobURL, count: 4))
    #expect(t.requests.map(\.maxResponseSize) == [64, 64, 64, 64])
  }

  @Test func httpStoreConditionalIndexRead() throws {
    let t = ScriptedTransport(retry: quickRetry)
    let store = HTTPStore(baseURL: "https://cdn.invalid/reg", transport: t)
    let index = "https://cdn.invalid/reg/index.json"
    t.script(index, [.ok(Data("v1".utf8), headers: ["ETag": "\"e1\""]), .respond(304), .notFound])
    #expect(try store.readDocument(.index, maxSize: 10, ifNoneMatch: nil) == .found(Data("v1".utf8), etag: "\"e1\""))
    #expect(try store.readDocument(.index, maxSize: 10, ifNoneMatch: "\"e1\"") == .notModified)
    #expect(try store.readDocument(.index, maxSize: 10, ifNoneMatch: "\"e1\"") == .absent)
    #expect(t.requests.map { $0.header("If-None-Match") } == [nil, "\"e1\"", "\"e1\""])
    // Opened for writing (`StoreURL.open`), the https store refuses to list or write.
    let writable = ReadOnlyHTTPStore(store)
    #expect(errorCode { _ = try writable.list() } == .usage)
    #expect(errorCode { try writable.apply(StoreChange(objects: [Data()])) } == .usage)
  }

  @Test func getManyVerifiesEachAndLeavesOutAbsentOnes() throws {
    let blobs = (0..<5).map { sampleData(count: 40 + $0, seed: UInt64($0)) }
    let t = ScriptedTransport(retry: quickRetry) { req in
      for b in blobs where req.url.hasSuffix(SHA256.hash(b).hex) { return .ok(b) }
      return .notFound
    }
    let store = HTTPStore(baseURL: "http://mirror.invalid", transport: t)
    let wanted = blobs.map { (SHA256.hash($0), $0.count) } + [(SHA256.hash("absent"), 10)]
    let got = try store.getMany(wanted)
    #expect(got.count == 5)
    for b in blobs { #expect(got[SHA256.hash(b)] == b) }
    #expect(t.requestCount == 6)
  }
}

/// Settings, and the pieces of the S3 protocol done by hand.
@Suite struct TransportPieceTests {
  @Test func timeoutFromEnvironment() throws {
    #expect(try TransportOptions.fromEnvironment([:]).totalTimeout == 30)
    let o = try TransportOptions.fromEnvironment(["TSUKU_API_TIMEOUT": "2.5", "TSUKU_CA_BUNDLE": "/etc/ca.pem"])
    #expect(o.totalTimeout == 2.5 && o.connectTimeout == 2.5 && o.caBundle == "/etc/ca.pem")
    #expect(errorCode { _ = try TransportOptions.fromEnvironment(["TSUKU_API_TIMEOUT": "soon"]) } == .usage)
    #expect(errorCode { _ = try TransportOptions.fromEnvironment(["TSUKU_API_TIMEOUT": "0"]) } == .usage)
  }

  @Test func md5KnownAnswers() {
    #expect(MD5.hex(Data()) == "d41d8cd98f00b204e9800998ecf8427e")
    #expect(MD5.hex(Data("abc".utf8)) == "900150983cd24fb0d6963f7d28e17f72")
    #expect(MD5.hex(Data("message digest".utf8)) == "f96b697d7cb7938d525a2f31aaf161d0")
    let long = Data(String(repeating: "1234567890", count: 8).utf8)
    #expect(MD5.hex(long) == "57edf4a22be3c955ac49da2e2107b67a")
    #expect(MD5.base64(Data("hello\n".utf8)) == "sZRqySSS0jR8YjW00mERhA==")
  }

  @Test func canonicalQueryIsSortedAndEncoded() {
    #expect(
      S3Protocol.canonicalQuery([("prefix", "a b/objects/"), ("list-type", "2"), ("continuation-token", "x+y=")])
        == "continuation-token=x%2By%3D&list-type=2&prefix=a%20b%2Fobjects%2F")
    #expect(S3Protocol.encode("reg/v1/ü~x", keepSlash: true) == "reg/v1/%C3%BC~x")
  }

  @Test func xmlValues() {
    let xml = "<R><Contents><Key>a&amp;b</Key><Size>3</Size></Contents><Contents><Key>c</Key></Contents></R>"
    #expect(S3Protocol.values("Key", in: xml) == ["a&b", "c"])
    #expect(S3Protocol.values("Contents", in: xml).count == 2)
    #expect(S3Protocol.value("Missing", in: xml) == nil)
  }

  @Test func secretsStayOutOfDescriptions() {
    let s = AWSSigning(region: "auto", accessKeyID: "AKIDEXAMPLE", secretAccessKey: "very-secret-value")
    let r = HTTPRequest("GET", "https://x.invalid/b/k", signing: s)
    #expect(!"\(r)".contains("very-secret") && !"\(s)".contains("very-secret"))
    let c = S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "very-secret-value")
    #expect(!"\(c)".contains("very-secret") && !String(reflecting: c).contains("very-secret"))
    var dumped = ""
    dump(r, to: &dumped)
    dump(c, to: &dumped)
    #expect(dumped.contains("AKIDEXAMPLE") && !dumped.contains("very-secret"))
  }
}
