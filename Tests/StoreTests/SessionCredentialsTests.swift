import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// A bucket on loopback that keeps what is PUT and answers GET, HEAD, DELETE, a listing and a
/// server-side copy the way S3 does: enough for every kind of request a store makes.
private func fakeBucket() throws -> LoopbackServer {
  let objects = Mutex<[String: Data]>([:])
  return try LoopbackServer { req in
    let parts = req.path.split(separator: "?", maxSplits: 1)
    let key = String(parts[0])
    let query = parts.count > 1 ? String(parts[1]) : ""
    let noKey = Data("<Error><Code>NoSuchKey</Code></Error>".utf8)
    switch req.method {
    case "GET" where query.contains("list-type=2"):
      return .respond(200, body: Data("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>".utf8))
    case "GET":
      guard let d = objects.withLock({ $0[key] }) else { return .respond(404, body: noKey) }
      return .respond(200, headers: [("ETag", "\"\(MD5.hex(d))\"")], body: d)
    case "HEAD":
      guard let d = objects.withLock({ $0[key] }) else { return .respond(404) }
      return .respond(200, headers: [("Content-Length", String(d.count))])
    case "PUT":
      if let source = req.headers["x-amz-copy-source"] {
        let from = "/" + source.drop { $0 == "/" }
        guard let d = objects.withLock({ $0[from] }) else { return .respond(404, body: noKey) }
        objects.withLock { $0[key] = d }
        return .respond(200, body: Data("<CopyObjectResult></CopyObjectResult>".utf8))
      }
      objects.withLock { $0[key] = req.body }
      return .respond(200, headers: [("ETag", "\"\(MD5.hex(req.body))\"")])
    case "DELETE":
      objects.withLock { $0[key] = nil }
      return .respond(204)
    default: return .respond(405)
    }
  }
}

/// Temporary credentials: the session token on every request, and how the credentials of a
/// web identity are obtained, renewed and refused.
@Suite struct SessionCredentialsTests {
  let token = "FwoGZXIvYXdzEJr//////////wEaDPq+/tsuku=session"

  @Test func sessionTokenIsSentAndSignedOnEveryKindOfRequest() throws {
    let server = try fakeBucket()
    let env = [
      "AWS_ACCESS_KEY_ID": "ASIATSUKUTEST", "AWS_SECRET_ACCESS_KEY": "temporary-secret", "AWS_SESSION_TOKEN": token,
    ]
    let store = try StoreURL.open("s3://bucket-one/reg?endpoint=\(server.url)&region=us-east-1", environment: env)
    let blob = Data("recipe".utf8)
    let id = SHA256.hash(blob)
    #expect(try store.readDocument(.index, maxSize: 100) == nil)
    try store.apply(StoreChange(objects: [blob], documents: [(.index, Data("{}".utf8))], precondition: .indexAbsent))
    #expect(try store.contains(id))
    #expect(try store.inventory(.live, dated: false).isEmpty)
    #expect(try store.move([id], from: .live, to: .quarantine) == 1)
    try store.remove([id], from: .quarantine)

    let requests = server.requests
    let kinds = Set(
      requests.map { r -> String in
        if r.path.contains("list-type=2") { return "LIST" }
        if r.headers["if-none-match"] != nil && r.method == "PUT" { return "conditional PUT" }
        if r.headers["x-amz-copy-source"] != nil { return "COPY" }
        return r.method
      })
    #expect(kinds == ["GET", "HEAD", "PUT", "conditional PUT", "LIST", "COPY", "DELETE"], "\(kinds)")
    for r in requests {
      #expect(r.headers["x-amz-security-token"] == token, "\(r.method) \(r.path)")
      // SigV4 covers the token: it is one of the signed headers.
      let signed = r.headers["authorization"]?.split(separator: ",").first { $0.contains("SignedHeaders=") }
      #expect(
        signed?.contains("x-amz-security-token") == true, "\(r.method) \(r.path): \(r.headers["authorization"] ?? "")")
    }
  }

  @Test func anExpiredSessionTokenIsReportedAsSuch() throws {
    let server = try LoopbackServer { _ in
      .respond(
        400,
        body: Data("<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>".utf8))
    }
    let env = [
      "TSUKU_S3_ACCESS_KEY_ID": "ASIAEXPIRED", "TSUKU_S3_SECRET_ACCESS_KEY": "s", "TSUKU_S3_SESSION_TOKEN": token,
    ]
    let store = try StoreURL.open("s3://bucket-one/reg?endpoint=\(server.url)", environment: env)
    let e = thrown { try store.apply(StoreChange(objects: [Data("x".utf8)], documents: [(.index, Data("{}".utf8))])) }
    #expect(e?.code.exitCode == 1)
    #expect(
      e?.message
        == "'s3://bucket-one/reg': the session token of temporary access key 'ASIAEXPIRED' has expired (ExpiredToken); get new credentials and run it again"
    )
    #expect(server.requests.first?.headers["x-amz-security-token"] == token)
  }

  @Test func aSessionTokenWithoutItsKeyOrWithALineBreakIsAUsageError() throws {
    let url = "s3://bucket-one?endpoint=http://127.0.0.1:1"
    var e = thrown { _ = try StoreURL.open(url, environment: ["TSUKU_S3_SESSION_TOKEN": token]) }
    #expect(e?.code == .usage)
    #expect(
      e?.message.hasPrefix("TSUKU_S3_SESSION_TOKEN is set but TSUKU_S3_ACCESS_KEY_ID") == true, "\(e?.message ?? "")")
    e = thrown {
      _ = try StoreURL.open(
        url,
        environment: ["AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_SESSION_TOKEN": "a\r\nX-Evil: 1"])
    }
    #expect(e?.code == .usage)
    #expect(e?.message == "AWS_SESSION_TOKEN contains a control character (a line break?)")
  }

  @Test func temporaryCredentialsAreNeverShown() throws {
    let c = S3Credentials(accessKeyID: "ASIAKEY", secretAccessKey: "the-secret", sessionToken: token, role: "arn:r")
    let s = AWSSigning(region: "auto", accessKeyID: "ASIAKEY", secretAccessKey: "the-secret", sessionToken: token)
    var dumped = ""
    dump(c, to: &dumped)
    dump(s, to: &dumped)
    for text in ["\(c)", String(reflecting: c), "\(s)", String(reflecting: s), dumped] {
      #expect(!text.contains("the-secret") && !text.contains(token), "\(text)")
    }
  }
}
