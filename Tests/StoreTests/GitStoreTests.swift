import Foundation
import TestSupport
import Testing

@testable import Store

/// Behaviour only the git backend has: commits, refs, history, subfolders, the work tree.
@Suite struct GitStoreTests {
  /// A fresh repository (work tree, HEAD on `main`) in a temporary directory.
  func withRepository(bare: Bool = false, _ body: (String) throws -> Void) throws {
    try withTemporaryDirectory { tmp in
      try body(try makeGitRepository(at: tmp + "/repo", bare: bare))
    }
  }

  @Test func unbornRepositoryReadsEmpty() throws {
    try withRepository { repo in
      let store = try GitStore(repository: repo)
      #expect(store.commitID == "")
      #expect(store.branch == "refs/heads/main")
      #expect(try store.list().isEmpty)
      #expect(try store.readDocument(.index, maxSize: 10) == nil)
      #expect(errorCode { _ = try store.get(SHA256.hash("x"), maxSize: 10) } == .notFound)
      let nothing = try store.apply(StoreChange(precondition: .indexAbsent))
      #expect(nothing.commit == nil && store.commitID == "")
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func oneCommitPerChange() throws {
    try withRepository { repo in
      let store = try GitStore(repository: repo)
      var commits = [String]()
      for i in 1...3 {
        let report = try store.apply(
          StoreChange(
            objects: blobs(3, seed: UInt64(i * 10)), documents: [(.index, Data("v\(i)".utf8))], message: "publish \(i)"))
        let commit = try #require(report.commit)
        #expect(commit == store.commitID)
        commits.append(commit)
      }
      #expect(try runGit(["rev-parse", "main"], in: repo) == commits.last)
      #expect(try runGit(["rev-list", "--count", "main"], in: repo) == "3")
      let people = try runGit(["log", "--format=%an <%ae>|%cn <%ce>|%s", "main"], in: repo)
      #expect(people.split(separator: "\n").map(String.init) == [3, 2, 1].map {
        "tsuku registry <registry@tsuku.invalid>|tsuku registry <registry@tsuku.invalid>|publish \($0)"
      })
      try runGit(["fsck", "--strict", "--no-dangling"], in: repo)
      #expect(abs(store.commitDate.timeIntervalSinceNow) < 300)
      // A change that alters nothing makes no commit.
      let again = try store.apply(StoreChange(objects: blobs(3, seed: 30), documents: [(.index, Data("v3".utf8))]))
      #expect(again.commit == nil && again.objectsPresent == 3)
      #expect(try runGit(["rev-list", "--count", "main"], in: repo) == "3")
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func readsOlderCommitsAndTags() throws {
    try withRepository { repo in
      let store = try GitStore(repository: repo)
      let (old, new) = (Data("old golden file".utf8), Data("new golden file".utf8))
      let c1 = try #require(try store.apply(StoreChange(objects: [old], documents: [(.index, Data("1".utf8))])).commit)
      let c2 = try #require(try store.apply(StoreChange(objects: [new], documents: [(.index, Data("2".utf8))])).commit)
      try runGit(["tag", "v1", c1], in: repo)
      for ref in [c1, String(c1.prefix(12)), "v1", "main~1", "HEAD^"] {
        let past = try GitStore(repository: repo, ref: ref)
        #expect(past.commitID == c1, "ref \(ref)")
        #expect(try past.get(SHA256.hash(old), maxSize: 100) == old)
        #expect(try !past.contains(SHA256.hash(new)))
        #expect(try past.readDocument(.index, maxSize: 10) == Data("1".utf8))
        #expect(past.branch == nil)
        #expect(errorCode { try past.apply(StoreChange(objects: [Data("x".utf8)])) } == .usage)
      }
      let tip = try GitStore(repository: repo, ref: "main")
      #expect(tip.commitID == c2 && tip.branch == "refs/heads/main")
      #expect(try tip.get(SHA256.hash(old), maxSize: 100) == old)  // history keeps every blob
      // The tip is read once: a store opened before a commit keeps reading its commit.
      try store.apply(StoreChange(documents: [(.index, Data("3".utf8))]))
      #expect(tip.commitID == c2)
      #expect(try tip.readDocument(.index, maxSize: 10) == Data("2".utf8))
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func subfolderLayout() throws {
    try withRepository(bare: true) { repo in
      let store = try GitStore(repository: repo, subdirectory: "/registry-index/store/")
      #expect(store.subdirectory == "registry-index/store")
      let d = Data("recipe".utf8)
      try store.apply(StoreChange(objects: [d], documents: [(.index, Data("i".utf8))]))
      let files = try runGit(["ls-tree", "-r", "--name-only", "main"], in: repo).split(separator: "\n").map(String.init)
      #expect(files == ["registry-index/store/index.json", "registry-index/store/" + SHA256.hash(d).path])
      #expect(try GitStore(repository: repo).list().isEmpty)
      #expect(try GitStore(repository: repo, subdirectory: "registry-index").list().isEmpty)
      let url = try StoreURL.open("git+file://\(repo)?dir=registry-index/store#main")
      #expect(try url.get(SHA256.hash(d), maxSize: 10) == d)
      #expect(errorCode { _ = try GitStore(repository: repo, subdirectory: "a/../b") } == .usage)
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func workTreeIsNotTouched() throws {
    try withRepository { repo in
      let store = try GitStore(repository: repo)
      try store.apply(StoreChange(documents: [(.index, Data("i".utf8))]))
      #expect(!FileManager.default.fileExists(atPath: repo + "/index.json"))
      try runGit(["reset", "--hard"], in: repo)
      #expect(FileManager.default.contents(atPath: repo + "/index.json") == Data("i".utf8))
    }
  }

  @Test(.enabled(if: gitCommandAvailable)) func publishesOnHeadBranchOfCommandLineRepo() throws {
    try withTemporaryDirectory { tmp in
      try runGit(["init", "-q", "-b", "trunk", "repo"], in: tmp)
      let repo = tmp + "/repo"
      #expect(FileManager.default.createFile(atPath: repo + "/README", contents: Data("hello\n".utf8)))
      try runGit(["add", "README"], in: repo)
      try runGit(["commit", "-q", "-m", "first"], in: repo)
      let store = try GitStore(repository: repo)
      #expect(store.branch == "refs/heads/trunk")
      try store.apply(StoreChange(objects: [Data("b".utf8)], message: "add a blob"))
      let listing = try runGit(["ls-tree", "-r", "--name-only", "trunk"], in: repo)
      let files = listing.split(separator: "\n").map(String.init)
      #expect(files == ["README", SHA256.hash("b").path])
      #expect(try runGit(["log", "-1", "--format=%s", "trunk"], in: repo) == "add a blob")
      try runGit(["fsck", "--strict", "--no-dangling"], in: repo)
    }
  }

  @Test func publishingRepairsATamperedBlob() throws {
    try withRepository { repo in
      let store = try GitStore(repository: repo)
      let d = Data("golden".utf8)
      try store.apply(StoreChange(objects: [d]))
      try store.commitRaw([(SHA256.hash(d).path, Data("evil!!".utf8))])
      #expect(errorCode { _ = try store.get(SHA256.hash(d), maxSize: 100) } == .integrity)
      let report = try store.apply(StoreChange(objects: [d]))
      #expect(report.objectsWritten == 1)
      #expect(try store.get(SHA256.hash(d), maxSize: 100) == d)
    }
  }

  @Test func concurrentPublishersConflict() throws {
    try withRepository { repo in
      let v1 = Data("v1".utf8)
      try GitStore(repository: repo).apply(StoreChange(documents: [(.index, v1)]))
      let outcomes = Failures()
      DispatchQueue.concurrentPerform(iterations: 6) { i in
        do {
          let store = try GitStore(repository: repo)
          let change = StoreChange(
            objects: [Data("blob \(i)".utf8)], documents: [(.index, Data("v2 by \(i)".utf8))],
            precondition: .indexHash(SHA256.hash(v1)), message: "publisher \(i)")
          try store.apply(change)
          outcomes.add("ok")
        } catch let e as TsukuError where e.code == .conflict {
          outcomes.add("conflict")
        } catch {
          outcomes.add("\(error)")
        }
      }
      #expect(outcomes.all.filter { $0 == "ok" }.count == 1)
      #expect(outcomes.all.filter { $0 == "conflict" }.count == 5)
      let store = try GitStore(repository: repo)
      let winner = try #require(try store.readDocument(.index, maxSize: 100))
      let n = try #require(Int(String(decoding: winner, as: UTF8.self).dropFirst("v2 by ".count)))
      #expect(try store.list() == [SHA256.hash("blob \(n)")])
    }
  }

  @Test func staleHandleStillPublishesOnTheNewTip() throws {
    try withRepository { repo in
      let a = try GitStore(repository: repo)
      let b = try GitStore(repository: repo)
      try b.apply(StoreChange(objects: [Data("from b".utf8)]))
      try a.apply(StoreChange(objects: [Data("from a".utf8)]))
      let both = [SHA256.hash("from a"), SHA256.hash("from b")].sorted()
      #expect(try a.list() == both)
      #expect(try GitStore(repository: repo).list() == both)
    }
  }

  @Test func errorsNameTheValue() throws {
    try withTemporaryDirectory { tmp in
      do {
        _ = try GitStore(repository: tmp + "/nothing")
        Issue.record("opened a missing repository")
      } catch let e as TsukuError {
        #expect(e.message.hasPrefix("cannot open git repository '\(tmp)/nothing': "))
        #expect(!e.message.contains("\n"))
      }
      let repo = try makeGitRepository(at: tmp + "/repo")
      try GitStore(repository: repo).apply(StoreChange(objects: [Data("x".utf8)]))
      do {
        _ = try GitStore(repository: repo, ref: "nope")
        Issue.record("opened a missing ref")
      } catch let e as TsukuError {
        #expect(e.code == .notFound)
        #expect(e.message == "ref 'nope' not found in '\(repo)'")
      }
      #expect(errorCode { _ = try GitStore(repository: repo, ref: "main~5") } == .notFound)
    }
  }

  @Test func unbornNamedBranchIsCreated() throws {
    try withRepository { repo in
      let store = try GitStore(repository: repo, ref: "registry")
      #expect(store.branch == "refs/heads/registry" && store.commitID == "")
      let c = try #require(try store.apply(StoreChange(objects: [Data("y".utf8)])).commit)
      #expect(try GitStore(repository: repo, ref: "registry").commitID == c)
      #expect(try GitStore(repository: repo, ref: "refs/heads/registry").commitID == c)
    }
  }
}
