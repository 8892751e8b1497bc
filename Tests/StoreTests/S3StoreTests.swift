import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// A fresh bucket on the test S3 server (the test is skipped only if SeaweedFS cannot be installed).
func freshBucket() throws -> (S3TestServer, String) {
  let server = try s3Server()
  return (server, try server.makeBucket())
}

/// The error `body` throws (a test failure if it throws none).
func thrown(_ body: () throws -> Void) -> TsukuError? {
  do {
    try body()
    Issue.record("expected an error")
  } catch let e as TsukuError {
    return e
  } catch {
    Issue.record("unexpected error \(error)")
  }
  return nil
}

/// Runs `action` the first time `hook` sees a request matching `when`, before that request.
final class Once: Sendable {
  private let done = Atomic<Bool>(false)
  func callAsFunction(_ action: () -> Void) {
    if !done.exchange(true, ordering: .relaxed) { action() }
  }
}

/// The bucket backend's own promises: credentials, races, cache headers, upload checks.
@Suite struct S3StoreTests {
  let v1 = Data(#"{"index":1}"#.utf8)
  let v2 = Data(#"{"index":2}"#.utf8)
  let v3 = Data(#"{"index":3}"#.utf8)

  @Test func readOnlyKeyCannotPublish() throws {
    let (server, bucket) = try freshBucket()
    let blob = Data("recipe".utf8)
    try server.store(bucket: bucket, prefix: "reg").apply(StoreChange(objects: [blob], documents: [(.index, v1)]))
    let ro = server.store(bucket: bucket, prefix: "reg", credentials: S3TestServer.reader)
    #expect(try ro.get(SHA256.hash(blob), maxSize: 100) == blob)
    #expect(try ro.list() == [SHA256.hash(blob)])
    let e = thrown { try ro.apply(StoreChange(objects: [Data("new".utf8)], documents: [(.index, v2)])) }
    #expect(e?.message == "'s3://\(bucket)/reg' refused the write: AccessDenied (the credentials are read-only?)")
    #expect(e?.code.exitCode == 1 && e?.details == [])
    #expect(thrown { try ro.remove([SHA256.hash(blob)]) }?.message.contains("refused the write: AccessDenied") == true)
    #expect(try ro.readDocument(.index, maxSize: 100) == v1)
    #expect(try ro.contains(SHA256.hash(blob)))
  }

  @Test func anonymousCanReadButNotWrite() throws {
    let (server, bucket) = try freshBucket()
    try server.store(bucket: bucket).apply(StoreChange(documents: [(.index, v1)]))
    let anonymous = server.store(bucket: bucket, credentials: nil)
    #expect(try anonymous.readDocument(.index, maxSize: 100) == v1)
    let e = thrown { try anonymous.apply(StoreChange(documents: [(.index, v2)])) }
    #expect(
      e?.message.hasPrefix(
        "'s3://\(bucket)' refused the write: AccessDenied (no credentials: set TSUKU_S3_ACCESS_KEY_ID") == true)
  }

  @Test func wrongSecretIsReportedAndNeverShown() throws {
    let (server, bucket) = try freshBucket()
    let secret = "not-the-secret-Zx9q"
    let bad = S3Credentials(accessKeyID: S3TestServer.admin.accessKeyID, secretAccessKey: secret)
    let store = server.store(bucket: bucket, prefix: "reg", credentials: bad)
    let expected =
      "'s3://\(bucket)/reg': the secret key for access key 'TSUKUTESTADMINKEY' is wrong (SignatureDoesNotMatch)"
    for e in [
      thrown { _ = try store.readDocument(.index, maxSize: 100) },
      thrown { try store.apply(StoreChange(objects: [Data("x".utf8)])) },
      thrown { _ = try store.list() },
    ] {
      #expect(e?.message == expected)
      #expect(e.map { !$0.detailed.contains(secret) && !"\($0)".contains(secret) } == true)
    }
    let unknown = server.store(
      bucket: bucket, credentials: S3Credentials(accessKeyID: "NOSUCHKEY", secretAccessKey: secret))
    let e = thrown { _ = try unknown.readDocument(.index, maxSize: 100) }
    #expect(e?.message.contains("access key 'NOSUCHKEY'") == true)
    #expect(e.map { !$0.detailed.contains(secret) } == true)
  }

  @Test func lostRaceOnConditionalWriteIsConflict() throws {
    let (server, bucket) = try freshBucket()
    try server.store(bucket: bucket).apply(StoreChange(documents: [(.index, v1)]))
    let rival = server.store(bucket: bucket)
    let once = Once()
    let v2 = v2
    let hook = HookTransport { req in
      if req.method == "PUT" && req.url.hasSuffix("/index.json") {
        once { _ = try? rival.apply(StoreChange(documents: [(.index, v2)])) }
      }
      return req
    }
    let loser = server.store(bucket: bucket, transport: hook)
    let blob = Data("loser's blob".utf8)
    let e = thrown {
      try loser.apply(
        StoreChange(objects: [blob], documents: [(.index, v3)], precondition: .indexHash(SHA256.hash(v1))))
    }
    #expect(e?.code == .conflict)
    #expect(e?.message.contains("refused the conditional write") == true)
    #expect(hook.requests.contains { $0.method == "PUT" && $0.header("If-Match") != nil })
    #expect(try server.store(bucket: bucket).readDocument(.index, maxSize: 100) == v2)
    #expect(try rival.contains(SHA256.hash(blob)))
  }

  @Test func lostRaceForFirstPublishIsConflict() throws {
    let (server, bucket) = try freshBucket()
    let rival = server.store(bucket: bucket)
    let once = Once()
    let v1 = v1
    let hook = HookTransport { req in
      if req.method == "PUT" && req.url.hasSuffix("/index.json") {
        once { _ = try? rival.apply(StoreChange(documents: [(.index, v1)])) }
      }
      return req
    }
    let loser = server.store(bucket: bucket, transport: hook)
    let e = thrown { try loser.apply(StoreChange(documents: [(.index, v2)], precondition: .indexAbsent)) }
    #expect(e?.code == .conflict)
    #expect(hook.requests.contains { $0.header("If-None-Match") == "*" })
    #expect(try rival.readDocument(.index, maxSize: 100) == v1)
  }

  @Test func bucketIgnoringConditionsIsCaughtByReadBack() throws {
    let (server, bucket) = try freshBucket()
    try server.store(bucket: bucket).apply(StoreChange(documents: [(.index, v1)]))
    let rival = server.store(bucket: bucket)
    let wrote = Atomic<Bool>(false)
    let once = Once()
    let v2 = v2
    // A bucket without conditional writes: the headers are dropped; the rival writes right
    // after our PUT, before our read-back.
    let hook = HookTransport { req in
      var r = req
      if r.url.hasSuffix("/index.json") {
        if r.method == "PUT" {
          r.headers.removeAll { $0.name == "If-Match" || $0.name == "If-None-Match" }
          wrote.store(true, ordering: .relaxed)
        } else if wrote.load(ordering: .relaxed) {
          once { _ = try? rival.apply(StoreChange(documents: [(.index, v2)])) }
        }
      }
      return r
    }
    let loser = server.store(bucket: bucket, transport: hook)
    let e = thrown {
      try loser.apply(StoreChange(documents: [(.index, v3)], precondition: .indexHash(SHA256.hash(v1))))
    }
    #expect(e?.code == .conflict)
    #expect(e?.message.contains("was overwritten by another publisher") == true)
    #expect(try rival.readDocument(.index, maxSize: 100) == v2)
  }

  @Test func uploadsCarryCacheControl() throws {
    let (server, bucket) = try freshBucket()
    let store = server.store(bucket: bucket, prefix: "reg")
    let blob = Data("golden file".utf8)
    try store.apply(StoreChange(objects: [blob], documents: [(.root(1), Data("root".utf8)), (.index, v1)]))
    let paths = [SHA256.hash(blob).path, "root/1.root.json", "index.json"]
    let heads = store.transport.perform(try paths.map { try store.reader.request("HEAD", $0) })
    let cache = try heads.map { try $0.get().header("cache-control") }
    #expect(cache == ["public, max-age=31536000, immutable", "public, max-age=60", "public, max-age=60"])
  }

  @Test func uploadsOnlyWhatIsMissing() throws {
    let (server, bucket) = try freshBucket()
    let hook = HookTransport()
    let store = server.store(bucket: bucket, transport: hook)
    let first = blobs(3, seed: 1)
    try store.apply(StoreChange(objects: first))
    let before = hook.requests.count
    let report = try store.apply(StoreChange(objects: first + blobs(2, seed: 9)))
    #expect(report.objectsWritten == 2 && report.objectsPresent == 3)
    let sent = hook.requests.dropFirst(before)
    #expect(sent.filter { $0.method == "PUT" }.count == 2)
    #expect(sent.filter { $0.method == "HEAD" }.count == 5)
    // A stored object of the wrong size (a lost upload) is written again.
    let broken = first[0]
    try store.putRaw(SHA256.hash(broken).path, Data())
    #expect(try store.apply(StoreChange(objects: [broken])).objectsWritten == 1)
    #expect(try store.get(SHA256.hash(broken), maxSize: 1000) == broken)
  }

  @Test func manyBlobsAreCheckedWithPagedListing() throws {
    let (server, bucket) = try freshBucket()
    let hook = HookTransport()
    let store = S3Store(
      S3Location(bucket: bucket, prefix: "p", endpoint: server.endpoint), credentials: S3TestServer.admin,
      transport: hook, listThreshold: 2, listPageSize: 2)
    let data = blobs(5, seed: 4)
    try store.apply(StoreChange(objects: data))
    #expect(try store.list() == data.map { SHA256.hash($0) }.sorted())
    let before = hook.requests.count
    #expect(try store.apply(StoreChange(objects: data)).objectsPresent == 5)
    let sent = hook.requests.dropFirst(before)
    #expect(sent.allSatisfy { $0.method == "GET" && $0.url.contains("list-type=2") })
    #expect(sent.count == 3)
  }

  @Test(arguments: [false, true])
  func zeroByteUploadIsCaught(stripMD5: Bool) throws {
    let (server, bucket) = try freshBucket()
    // A transport that loses PUT bodies but keeps their headers (the libcurl form-type quirk);
    // without Content-MD5 the bucket cannot compare, and the ETag or size check must catch it.
    let lossy = HookTransport { req in
      var r = req
      if r.method == "PUT" && r.url.contains("/objects/") {
        r.body = Data()
        if stripMD5 { r.headers.removeAll { $0.name == "Content-MD5" } }
      }
      return r
    }
    let store = server.store(bucket: bucket, transport: lossy)
    let e = thrown { try store.apply(StoreChange(objects: [Data("recipe bytes".utf8)], documents: [(.index, v1)])) }
    #expect(e?.code == .integrity, "\(String(describing: e))")
    #expect(try server.store(bucket: bucket).readDocument(.index, maxSize: 100) == nil)
  }

  @Test func storedSizeIsCheckedWhenTheETagIsNoMD5() throws {
    let blob = Data("twelve bytes".utf8)
    let url = "http://s3.invalid/b/" + SHA256.hash(blob).path
    let t = ScriptedTransport(retry: quickRetry)
    t.script(
      url,
      [
        .notFound, .respond(200, headers: ["ETag": "\"d41d8cd98f00b204e9800998ecf8427e\""]),
        .respond(200, headers: ["Content-Length": "0"]),
      ])
    let store = S3Store(
      S3Location(bucket: "b", endpoint: "http://s3.invalid"), credentials: S3TestServer.admin, transport: t)
    let e = thrown { try store.apply(StoreChange(objects: [blob])) }
    #expect(e?.code == .integrity)
    #expect(
      e?.message == "'s3://b' stored 0 of the 12 bytes written to '\(SHA256.hash(blob).path)'; the upload was lost")
    #expect(t.requests.map(\.method) == ["HEAD", "PUT", "HEAD"])
    #expect(t.requests[1].header("x-amz-content-sha256") == SHA256.hash(blob).hex)
    #expect(t.requests[1].header("Content-MD5") == MD5.base64(blob))
  }

  @Test func unchangedIndexCostsOneRequest() throws {
    let (server, bucket) = try freshBucket()
    try server.store(bucket: bucket).apply(StoreChange(documents: [(.index, v1)]))
    let reader = server.store(bucket: bucket, credentials: S3TestServer.reader)
    guard case .found(_, let tag?) = try reader.readDocument(.index, maxSize: 100, ifNoneMatch: nil) else {
      Issue.record("no etag")
      return
    }
    let before = reader.requestCount
    #expect(try reader.readDocument(.index, maxSize: 100, ifNoneMatch: tag) == .notModified)
    #expect(reader.requestCount - before == 1)
  }

  @Test func getManyIsOneRequestPerBlobAndVerifies() throws {
    let (server, bucket) = try freshBucket()
    let store = server.store(bucket: bucket)
    let data = blobs(20, seed: 30)
    try store.apply(StoreChange(objects: data))
    let before = store.requestCount
    let got = try store.getMany(data.map { (SHA256.hash($0), $0.count) })
    #expect(got.count == 20 && store.requestCount - before == 20)
    var flipped = data[3]
    flipped[0] ^= 1
    try store.putRaw(SHA256.hash(data[3]).path, flipped)
    #expect(errorCode { _ = try store.getMany(data.map { (SHA256.hash($0), $0.count) }) } == .integrity)
  }

  @Test func openedFromURLWithEnvironmentCredentials() throws {
    let (server, bucket) = try freshBucket()
    let env = [
      "TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID,
      "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey, "TSUKU_API_TIMEOUT": "10",
    ]
    let store = try StoreURL.open("s3://\(bucket)/reg/v1?endpoint=\(server.endpoint)&region=auto", environment: env)
    try store.apply(StoreChange(objects: [Data("a".utf8)], documents: [(.index, v1)]))
    let https = try StoreURL.open(server.publicURL(bucket: bucket, prefix: "reg/v1"), environment: [:])
    #expect(try https.readDocument(.index, maxSize: 100) == v1)
    #expect(try https.get(SHA256.hash("a"), maxSize: 1) == Data("a".utf8))
    #expect((store as? S3Store)?.requestCount ?? 0 > 0)
  }
}
