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

  @Test(arguments: [
    "s3://bucket/prefix", "https://registry.tsuku.dev/store", "http://localhost:9000/store", "HTTPS://X",
  ])
  func remoteSchemesAreNotSupportedYet(_ url: String) {
    do {
      _ = try StoreURL.open(url)
      Issue.record("'\(url)' was accepted")
    } catch let e as TsukuError {
      #expect(e.code == .usage)
      #expect(e.message == "source '\(url)': s3 and https stores are not supported yet")
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
      #expect(e.message.hasPrefix("unsupported store URL '\(url)': expected file:///path, a path, or git+file:///repo"))
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
