import Foundation
import TestSupport
import Testing

@testable import Store

/// The store URL syntax: what each form opens, and what is refused.
@Suite struct StoreURLTests {
  static var cwd: String { FileManager.default.currentDirectoryPath }

  @Test func directoryForms() throws {
    #expect(try StoreURL.parse("/var/cache/tsuku") == .directory(path: "/var/cache/tsuku"))
    #expect(try StoreURL.parse("file:///var/cache/tsuku") == .directory(path: "/var/cache/tsuku"))
    #expect(try StoreURL.parse("FILE:///x") == .directory(path: "/x"))
    #expect(try StoreURL.parse("file://localhost/srv/mirror") == .directory(path: "/srv/mirror"))
    #expect(try StoreURL.parse("file:///srv/my%20mirror") == .directory(path: "/srv/my mirror"))
    #expect(try StoreURL.parse("mirror") == .directory(path: Self.cwd + "/mirror"))
    #expect(try StoreURL.parse("./mirror/store") == .directory(path: Self.cwd + "/mirror/store"))
    #expect(try StoreURL.parse("./odd:name") == .directory(path: Self.cwd + "/odd:name"))
  }

  @Test func gitForms() throws {
    #expect(
      try StoreURL.parse("git+file:///work/repo?dir=registry-index/store#main")
        == .git(repository: "/work/repo", subdirectory: "registry-index/store", ref: "main"))
    #expect(try StoreURL.parse("git+file:///work/repo") == .git(repository: "/work/repo", subdirectory: nil, ref: nil))
    #expect(
      try StoreURL.parse("git+file:///r#0123456789abcdef0123456789abcdef01234567")
        == .git(repository: "/r", subdirectory: nil, ref: "0123456789abcdef0123456789abcdef01234567"))
    #expect(
      try StoreURL.parse("git+file://localhost/my%20repo%23x?dir=a%20b#feature%2Fx")
        == .git(repository: "/my repo#x", subdirectory: "a b", ref: "feature/x"))
    #expect(try StoreURL.parse("git+file:///r?dir=#v1") == .git(repository: "/r", subdirectory: "", ref: "v1"))
  }

  @Test func remoteForms() throws {
    #expect(
      try StoreURL.parse("s3://tsuku-registry/v1?endpoint=https://acct.r2.cloudflarestorage.com&region=auto")
        == .s3(S3Location(bucket: "tsuku-registry", prefix: "v1", endpoint: "https://acct.r2.cloudflarestorage.com")))
    #expect(
      try StoreURL.parse("s3://bkt?endpoint=http%3A%2F%2F127.0.0.1%3A8333/&style=virtual")
        == .s3(S3Location(bucket: "bkt", endpoint: "http://127.0.0.1:8333", region: "auto", virtualHost: true)))
    #expect(
      try StoreURL.parse("s3://bkt/a//b/?region=eu-west-1")
        == .s3(S3Location(bucket: "bkt", prefix: "a/b", region: "eu-west-1", virtualHost: true)))
    #expect(
      try StoreURL.parse("https://registry.tsuku.dev/store/") == .http(baseURL: "https://registry.tsuku.dev/store"))
    #expect(try StoreURL.parse("http://localhost:9000/store") == .http(baseURL: "http://localhost:9000/store"))
    #expect(try StoreURL.parse("HTTPS://X") == .http(baseURL: "https://X"))
  }

  @Test func s3Addressing() {
    let path = S3Location(bucket: "bkt", prefix: "reg/v1", endpoint: "http://127.0.0.1:8333")
    #expect(path.url("index.json") == "http://127.0.0.1:8333/bkt/reg/v1/index.json")
    #expect(path.url == "s3://bkt/reg/v1")
    let virtual = S3Location(bucket: "bkt", endpoint: "https://acct.r2.cloudflarestorage.com", virtualHost: true)
    #expect(virtual.url("root/1.root.json") == "https://bkt.acct.r2.cloudflarestorage.com/root/1.root.json")
    let aws = S3Location(bucket: "bkt", prefix: "a b", region: "eu-west-1")
    #expect(aws.url("index.json") == "https://bkt.s3.eu-west-1.amazonaws.com/a%20b/index.json")
  }

  @Test func remoteStoresOpenWithoutNetwork() throws {
    let s3 = try StoreURL.open("s3://bkt/reg?endpoint=http://127.0.0.1:9", environment: [:])
    #expect((s3 as? S3Store)?.location == "s3://bkt/reg")
    let https = try StoreURL.openReader("https://cdn.invalid/reg", environment: [:])
    #expect((https as? HTTPStore)?.baseURL == "https://cdn.invalid/reg")
    for env in [["TSUKU_API_TIMEOUT": "x"], ["AWS_ACCESS_KEY_ID": "k"]] {
      #expect(errorCode { _ = try StoreURL.open("s3://bkt?endpoint=http://h", environment: env) } == .usage)
    }
  }

  @Test func anHTTPSURLOpenedForWritingReadsButRefusesWritesAndListing() throws {
    let url = "https://cdn.invalid/reg"
    let store = try StoreURL.open(url, environment: [:])
    #expect(store.location == url)
    let readOnly = "'\(url)' is read-only: publish to its bucket with an s3:// URL"
    let noListing = "'\(url)' cannot list its blobs: an https store has no listing (use its s3:// URL)"
    func message(_ body: () throws -> Void) -> String? {
      do { try body() } catch let e as TsukuError { return e.code == .usage ? e.message : "code \(e.code)" } catch {
        return "\(error)"
      }
      return nil
    }
    #expect(message { try store.apply(StoreChange()) } == readOnly)
    #expect(message { try store.apply(StoreChange(), sources: []) } == readOnly)
    #expect(message { try store.remove([SHA256.hash(Data())]) } == readOnly)
    #expect(message { try store.move([SHA256.hash(Data())], from: .live, to: .quarantine) } == readOnly)
    #expect(message { try store.remove([SHA256.hash(Data())], from: .quarantine) } == readOnly)
    #expect(message { _ = try store.list() } == noListing)
    #expect(message { _ = try store.inventory(.live, dated: false) } == noListing)
    // Nothing to do is no write: no refusal.
    #expect(message { try store.remove([]) } == nil)
    #expect(try store.move([], from: .live, to: .quarantine) == 0)
  }

  @Test func credentialsFromEnvironment() throws {
    #expect(try S3Credentials.fromEnvironment([:]) == nil)
    let tsuku = try S3Credentials.fromEnvironment([
      "TSUKU_S3_ACCESS_KEY_ID": "t", "TSUKU_S3_SECRET_ACCESS_KEY": "ts", "AWS_ACCESS_KEY_ID": "a",
      "AWS_SECRET_ACCESS_KEY": "as",
    ])
    #expect(tsuku?.accessKeyID == "t" && tsuku?.secretAccessKey == "ts")
    let aws = try S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "as"])
    #expect(aws?.accessKeyID == "a")
    do {
      _ = try S3Credentials.fromEnvironment(["TSUKU_S3_SECRET_ACCESS_KEY": "hidden"])
      Issue.record("half a pair was accepted")
    } catch let e as TsukuError {
      #expect(e.message == "TSUKU_S3_SECRET_ACCESS_KEY is set but TSUKU_S3_ACCESS_KEY_ID is not")
    }
  }

  @Test(arguments: [
    "s3://ab/x?endpoint=http://h", "s3://Bucket/x?endpoint=http://h", "s3://bkt/../x?endpoint=http://h",
    "s3://bkt/x", "s3://bkt/x?region=auto", "s3://bkt?endpoint=ftp://h", "s3://bkt?endpoint=http://h/path",
    "s3://bkt?endpoint=http://u:p@h", "s3://bkt?endpoint=http://h&style=dns", "s3://bkt?endpoint=http://h&key=v",
    "s3://bkt#x", "https://", "https://h/x?y=1", "https://h/x#f",
  ])
  func malformedRemoteURLsAreUsageErrors(_ url: String) {
    #expect(errorCode { _ = try StoreURL.open(url, environment: [:]) } == .usage, "'\(url)'")
  }

  @Test func credentialsInAnHTTPSURLAreRefusedWithoutEchoingThem() {
    do {
      _ = try StoreURL.open("https://user:hunter2@cdn.invalid/reg", environment: [:])
      Issue.record("accepted")
    } catch let e as TsukuError {
      #expect(e.code == .usage && !e.message.contains("hunter2"))
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  @Test(arguments: ["memory:", "ftp://host/x", "git+https://github.com/tsuku/registry", "git+ssh://x/y", "c:store"])
  func unsupportedSchemes(_ url: String) {
    do {
      _ = try StoreURL.open(url)
      Issue.record("'\(url)' was accepted")
    } catch let e as TsukuError {
      #expect(e.code == .usage)
      #expect(e.message.hasPrefix("unsupported store URL '\(url)': expected file:///path, a path, git+file:///repo"))
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  @Test(arguments: [
    "git+file:///r?dir=../x", "git+file:///r?dir=a/../../x", "git+file:///r?dir=a/..", "git+file:///r?dir=%2E%2E/x",
    "git+file:///r?dir=/abs", "git+file:///r?ref=main", "git+file:///r?dir", "git+file:///r#", "git+file://relative/r",
    "file://relative", "file:", "", "git+file:///r%ZZ",
  ])
  func malformedURLsAreUsageErrors(_ url: String) {
    #expect(errorCode { _ = try StoreURL.open(url) } == .usage, "'\(url)'")
  }

  @Test func messagesNameTheValue() {
    do {
      _ = try StoreURL.parse("git+file:///r?dir=../x")
      Issue.record("accepted")
    } catch let e as TsukuError {
      #expect(e.message.contains("'git+file:///r?dir=../x'") && e.message.contains("'..'"))
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  @Test func opensRealStores() throws {
    try withTemporaryDirectory { tmp in
      let d = Data("recipe".utf8)
      let dir = try StoreURL.open("file://" + tmp + "/cache")
      #expect((dir as? DirectoryStore)?.root == tmp + "/cache")
      try dir.apply(StoreChange(objects: [d]))
      #expect(try StoreURL.open(tmp + "/cache").get(SHA256.hash(d), maxSize: 10) == d)

      let repo = try makeGitRepository(at: tmp + "/repo")
      let c1 = try #require(try GitStore(repository: repo).apply(StoreChange(objects: [d])).commit)
      try GitStore(repository: repo).apply(StoreChange(objects: [Data("later".utf8)]))
      let git = try StoreURL.open("git+file://\(repo)#\(c1)")
      #expect((git as? GitStore)?.commitID == c1)
      #expect(try git.list() == [SHA256.hash(d)])
      #expect(try StoreURL.open("git+file://\(repo)").list().count == 2)
      #expect(errorCode { _ = try StoreURL.open("git+file://\(tmp)/missing") } == .other)
      #expect(errorCode { _ = try StoreURL.open("git+file://\(repo)#nope") } == .notFound)
    }
  }
}
