import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// Behaviour only the directory backend has: temporary files, concurrent writers, I/O errors.
@Suite struct DirectoryStoreTests {
  @Test func noTemporaryFilesRemain() throws {
    try withTemporaryDirectory { tmp in
      let store = DirectoryStore(path: tmp + "/store")
      try store.apply(
        StoreChange(objects: blobs(40) + [Data()], documents: [(.root(1), Data("r".utf8)), (.index, Data("i".utf8))]))
      try store.apply(StoreChange(objects: blobs(10, seed: 70), documents: [(.index, Data("j".utf8))]))
      #expect(filesNamed(prefix: ".tmp-", under: tmp).isEmpty)
      #expect(try store.list().count == 51)
    }
  }

  @Test func concurrentWritersLeaveAVerifiedStore() throws {
    try withTemporaryDirectory { tmp in
      let root = tmp + "/store"
      let data = blobs(60, seed: 5, size: 4000)
      let failures = Failures()
      DispatchQueue.concurrentPerform(iterations: 8) { i in
        do {
          let store = DirectoryStore(path: root)  // one handle per writer, as separate processes have
          // Every writer starts at a different place, so the same names are written at once.
          let rotated = Array(data[(i * 7)...] + data[..<(i * 7)])
          try store.apply(StoreChange(objects: rotated, documents: [(.index, Data("writer \(i)".utf8))]))
        } catch {
          failures.add("\(error)")
        }
      }
      #expect(failures.all.isEmpty)
      let store = DirectoryStore(path: root)
      #expect(try store.list() == Set(data.map { SHA256.hash($0) }).sorted())
      for d in data { #expect(try store.get(SHA256.hash(d), maxSize: d.count) == d) }
      let index = try #require(try store.readDocument(.index, maxSize: 100))
      #expect(String(decoding: index, as: UTF8.self).hasPrefix("writer "))
      #expect(filesNamed(prefix: ".tmp-", under: tmp).isEmpty)
    }
  }

  @Test func unwritablePlaceFailsWithOneLine() {
    let store = DirectoryStore(path: "/proc/tsuku-store-test")
    do {
      try store.apply(StoreChange(objects: [Data("x".utf8)]))
      Issue.record("writing under /proc succeeded")
    } catch let e as TsukuError {
      #expect(e.code == .other)
      #expect(e.message.contains("'/proc/tsuku-store-test"))
      #expect(!e.message.contains("\n"))
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  @Test func missingRootReadsAsEmpty() throws {
    let store = DirectoryStore(path: "/nonexistent/tsuku-store/")
    #expect(store.root == "/nonexistent/tsuku-store")
    #expect(try store.list().isEmpty)
    #expect(try store.readDocument(.index, maxSize: 10) == nil)
    #expect(errorCode { _ = try store.get(SHA256.hash("x"), maxSize: 10) } == .notFound)
  }

  @Test func sweepRemovesOldTemporaries() throws {
    try withTemporaryDirectory { tmp in
      let store = DirectoryStore(path: tmp)
      let d = Data("kept".utf8)
      try store.apply(StoreChange(objects: [d]))
      let leftover = tmp + "/objects/sha256/" + SHA256.hash(d).fanout + "/.tmp-crashed"
      #expect(FileManager.default.createFile(atPath: leftover, contents: Data("partial".utf8)))
      store.sweepTemporaries(olderThan: 3600)
      #expect(FileManager.default.fileExists(atPath: leftover))
      store.sweepTemporaries(olderThan: -1)
      #expect(!FileManager.default.fileExists(atPath: leftover))
      #expect(try store.get(SHA256.hash(d), maxSize: 10) == d)
    }
  }
}

/// Errors collected from concurrent workers.
final class Failures: Sendable {
  private let list = Mutex([String]())
  func add(_ s: String) { list.withLock { $0.append(s) } }
  var all: [String] { list.withLock { $0 } }
}
