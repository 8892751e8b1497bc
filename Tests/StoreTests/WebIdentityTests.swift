import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// The SeaweedFS whose gateway answers STS (skipped only if SeaweedFS cannot be installed).
func stsServer() throws -> STSTestServer {
  do {
    return try STSTestServer.require()
  } catch let e as S3TestServer.S3Unavailable {
    try Test.cancel("\(e)")
  }
}

/// A clock the test moves.
final class TestClock: Sendable {
  private let now = Mutex(Date())
  func callAsFunction() -> Date { now.withLock { $0 } }
  func advance(_ seconds: Double) { now.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Exchanging a web identity token for bucket credentials at a real STS (SeaweedFS trusting a
/// loopback OIDC issuer): renewal, refusals and failures.
@Suite struct WebIdentityTests {
  let index = Data(#"{"index":1}"#.utf8)

  func tokenFile(_ dir: TemporaryDirectory, _ token: String) throws -> String {
    let file = dir.file("token")
    try token.write(toFile: file, atomically: true, encoding: .utf8)
    return file
  }

  @Test func credentialsAreReusedThenRenewedNearExpiryFromTheTokenFileReadAgain() throws {
    let sts = try stsServer()
    let bucket = try sts.makeBucket()
    let dir = try TemporaryDirectory()
    let file = try tokenFile(dir, try sts.issuer.token(subject: STSTestServer.publisherSubject))
    let clock = TestClock()
    let source = WebIdentityCredentials(
      roleARN: STSTestServer.publisherRole, tokenFile: file, sessionName: "renewal", endpoint: sts.endpoint,
      transport: CurlTransport(), clock: { clock() })
    let store = sts.store(bucket: bucket, prefix: "reg", credentials: source)
    let blob = Data("recipe".utf8)
    try store.apply(StoreChange(objects: [blob], documents: [(.index, index)]))
    #expect(try store.readDocument(.index, maxSize: 100) == index)
    #expect(source.exchanges == 1)
    #expect(source.subject == STSTestServer.publisherSubject)

    // SeaweedFS gives an hour: four minutes before the end (within the five-minute margin),
    // the next request renews first.
    clock.advance(56 * 60)
    #expect(try store.contains(SHA256.hash(blob)))
    #expect(source.exchanges == 2)
    #expect(try store.readDocument(.index, maxSize: 100) == index)
    #expect(source.exchanges == 2)

    // The token file is read again at each renewal: an expired token there is refused, and
    // the request that needed the renewal is never sent.
    try sts.issuer.token(subject: STSTestServer.publisherSubject, lifetime: -120).write(
      toFile: file, atomically: true, encoding: .utf8)
    clock.advance(56 * 60)
    let sent = store.requestCount
    let e = thrown { try store.apply(StoreChange(objects: [Data("more".utf8)], documents: [(.index, index)])) }
    #expect(e?.code == .other)
    #expect(e?.message.hasPrefix("STS at '\(sts.endpoint)' refused the web identity token in '\(file)'") == true)
    #expect(e?.message.contains("ExpiredToken") == true, "\(e?.message ?? "")")
    #expect(store.requestCount == sent)
  }

  @Test func refusedTokensGiveOneLineNamingTheCause() throws {
    let sts = try stsServer()
    let dir = try TemporaryDirectory()
    let subject = STSTestServer.publisherSubject
    let cases: [(String, String, String)] = [
      ("expired", try sts.issuer.token(subject: subject, lifetime: -120), "ExpiredToken"),
      ("signed by another key", try sts.issuer.token(subject: subject, signer: try RSAKey()), "signature is invalid"),
      ("another subject", try sts.issuer.token(subject: STSTestServer.pullRequestSubject), "AccessDenied"),
      ("another audience", try sts.issuer.token(subject: subject, audience: "someone-else"), "AccessDenied"),
    ]
    for (what, token, said) in cases {
      let file = try tokenFile(dir, token)
      let e = thrown { _ = try sts.assumeFrom(file: file, role: STSTestServer.publisherRole) }
      #expect(e?.code == .other, "\(what)")
      #expect(
        e?.message.contains("refused the web identity token in '\(file)' for role '\(STSTestServer.publisherRole)'")
          == true, "\(what): \(e?.message ?? "")")
      #expect(e?.message.lowercased().contains(said.lowercased()) == true, "\(what): \(e?.message ?? "")")
      #expect(e?.message.contains("\n") == false && e?.message.contains(token) == false, "\(what)")
    }
    var e = thrown { _ = try sts.assumeFrom(file: dir.file("absent"), role: STSTestServer.publisherRole) }
    #expect(e?.code == .usage)
    #expect(e?.message == "AWS_WEB_IDENTITY_TOKEN_FILE '\(dir.file("absent"))' does not exist")
    e = thrown { _ = try sts.assumeFrom(file: try tokenFile(dir, "\n"), role: STSTestServer.publisherRole) }
    #expect(e?.message == "AWS_WEB_IDENTITY_TOKEN_FILE '\(dir.file("token"))' is empty")
  }

  @Test func readerRoleCredentialsReadButTheirWriteIsRefusedAndNothingIsWritten() throws {
    let sts = try stsServer()
    let bucket = try sts.makeBucket()
    let admin = sts.store(bucket: bucket, prefix: "reg", credentials: S3TestServer.admin)
    try admin.apply(StoreChange(objects: [Data("v1".utf8)], documents: [(.index, index)]))
    let before = try admin.inventory(.live, dated: false)
    let reader = try sts.assume(
      role: STSTestServer.readerRole, token: try sts.issuer.token(subject: STSTestServer.pullRequestSubject))
    let store = sts.store(bucket: bucket, prefix: "reg", credentials: reader)
    #expect(try store.readDocument(.index, maxSize: 100) == index)
    let e = thrown { try store.apply(StoreChange(objects: [Data("v2".utf8)], documents: [(.index, Data("{}".utf8))])) }
    #expect(
      e?.message
        == "'s3://\(bucket)/reg' refused the write: AccessDenied (role '\(STSTestServer.readerRole)' is read-only?)")
    #expect(e?.code.exitCode == 1)
    #expect(try admin.inventory(.live, dated: false) == before)
    #expect(try admin.readDocument(.index, maxSize: 100) == index)
  }

  @Test func unreachableOrFailingSTSIsUnavailableAndABadAnswerIsRefused() throws {
    let dir = try TemporaryDirectory()
    let file = try tokenFile(dir, "header.payload.signature")
    var options = TransportOptions()
    options.retry = RetryPolicy(maxAttempts: 2, baseDelay: 0.01, maxDelay: 0.02)
    func exchange(_ endpoint: String) -> TsukuError? {
      let source = WebIdentityCredentials(
        roleARN: "arn:aws:iam::1:role/R", tokenFile: file, sessionName: "s1", endpoint: endpoint,
        transport: CurlTransport(options: options))
      return thrown { _ = try source.current() }
    }
    var e = exchange("http://127.0.0.1:\(LoopbackServer.closedPort())")
    #expect(e?.code == .unavailable)
    #expect(
      e?.message.hasPrefix("cannot get credentials for role 'arn:aws:iam::1:role/R' from STS at 'http://127.0.0.1:")
        == true)
    #expect(e?.message.hasSuffix("connection refused") == true, "\(e?.message ?? "")")

    let busy = try LoopbackServer { _ in
      .respond(503, body: Data("<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>".utf8))
    }
    e = exchange(busy.url)
    #expect(e?.code == .unavailable)
    #expect(e?.message.contains("it answered 503 (ServiceUnavailable)") == true, "\(e?.message ?? "")")
    #expect(busy.requests.count == 2)
    #expect(
      busy.requests.allSatisfy {
        $0.method == "POST" && String(decoding: $0.body, as: UTF8.self).contains("Action=AssumeRoleWithWebIdentity")
      })

    let odd = try LoopbackServer { _ in .respond(200, body: Data("<AssumeRoleWithWebIdentityResponse/>".utf8)) }
    e = exchange(odd.url)
    #expect(e?.code == .other)
    #expect(e?.message.hasSuffix("its answer has no usable credentials") == true)

    // The token goes only where it was addressed: a redirect is not followed.
    let elsewhere = try LoopbackServer { _ in .respond(200) }
    let redirect = try LoopbackServer { _ in .respond(307, headers: [("Location", elsewhere.url + "/")]) }
    e = exchange(redirect.url)
    #expect(e?.code == .other)
    #expect(e?.message.hasSuffix("': HTTP 307") == true, "\(e?.message ?? "")")
    #expect(elsewhere.requests.isEmpty)

    // An endless answer is cut off at 64 KiB.
    let huge = try LoopbackServer { _ in .respond(200, body: Data(repeating: 0x41, count: 1 << 20)) }
    e = exchange(huge.url)
    #expect(e?.message.contains("longer than the 65536 bytes allowed") == true, "\(e?.message ?? "")")
  }
}

extension STSTestServer {
  /// An exchange with the token in `file`, as the environment would name it.
  func assumeFrom(file: String, role: String) throws -> S3Credentials {
    try WebIdentityCredentials(
      roleARN: role, tokenFile: file, sessionName: "tsuku-test", endpoint: endpoint, transport: CurlTransport()
    ).current()
  }
}
