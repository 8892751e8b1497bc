import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// Counts the reads of the sources made with it.
final class ReadCounter: Sendable {
  private let n = Mutex(0)
  var reads: Int { n.withLock { $0 } }

  /// A source of `data` that counts each read.
  func source(_ data: Data) -> BlobSource {
    BlobSource(id: SHA256.hash(data), size: data.count, origin: "test source") {
      self.n.withLock { $0 += 1 }
      return data
    }
  }
}

/// The number of commits on the branch of a git backend; nil for the others.
func commitCount(_ store: any ObjectStore) throws -> Int? {
  guard let git = store as? GitStore else { return nil }
  if try GitStore(repository: git.repositoryPath).commitID.isEmpty { return 0 }
  return Int(
    try runGit(["rev-list", "--count", "HEAD"], in: git.repositoryPath).trimmingCharacters(in: .whitespacesAndNewlines))
}

/// `apply(_:sources:)`: blobs given lazily, read in bounded batches, never read when present.
@Suite struct SourceApplyTests {
  @Test(arguments: BackendKind.allCases) func presentSourcesAreSkippedAndNewOnesWrittenOnce(_ kind: BackendKind) throws
  {
    try withBackend(kind) { b in
      let first = blobs(5, seed: 100)
      let tree = Data("tree".utf8)
      let v1 = Data("v1".utf8)
      let reads = ReadCounter()
      let r1 = try b.store.apply(
        StoreChange(objects: [tree], documents: [(.index, v1)], precondition: .indexAbsent),
        sources: first.map(reads.source))
      #expect(r1.objectsWritten == 6 && r1.objectsPresent == 0 && r1.documentsWritten == 1)
      #expect(r1.bytesWritten == first.reduce(tree.count) { $0 + $1.count })
      #expect(reads.reads == 5)
      for d in first + [tree] { #expect(try b.reopen().get(SHA256.hash(d), maxSize: d.count) == d) }
      #expect(try b.reopen().readDocument(.index, maxSize: 10) == v1)

      // Five present, two new, one of them given twice: only the new ones are read (git also
      // reads the present ones once, to compare their git ids: it repairs a damaged tree).
      let more = blobs(2, seed: 200)
      let reads2 = ReadCounter()
      let v2 = Data("v2".utf8)
      let r2 = try b.store.apply(
        StoreChange(documents: [(.index, v2)], precondition: .indexHash(SHA256.hash(v1))),
        sources: (first + more + [more[0]]).map(reads2.source))
      #expect(r2.objectsWritten == 2 && r2.objectsPresent == 6)
      #expect(reads2.reads == ([.git, .gitSubfolder].contains(kind) ? 7 : 2))
      #expect(try b.reopen().readDocument(.index, maxSize: 10) == v2)
      for d in more { #expect(try b.reopen().get(SHA256.hash(d), maxSize: d.count) == d) }
      // A git target makes one commit per change, however many batches its blobs took.
      if let n = try commitCount(b.store) { #expect(n == 2) }
    }
  }

  @Test(arguments: BackendKind.allCases) func aPublisherThatLostTheRaceReadsAndWritesNothing(_ kind: BackendKind) throws
  {
    try withBackend(kind) { b in
      let v1 = Data("v1".utf8)
      try b.store.apply(StoreChange(documents: [(.index, v1)]))
      try b.reopen().apply(
        StoreChange(documents: [(.index, Data("v2".utf8))], precondition: .indexHash(SHA256.hash(v1))))
      let late = blobs(3, seed: 300)
      let reads = ReadCounter()
      let change = StoreChange(documents: [(.index, Data("v3".utf8))], precondition: .indexHash(SHA256.hash(v1)))
      #expect(errorCode { try b.store.apply(change, sources: late.map(reads.source)) } == .conflict)
      #expect(reads.reads == 0)
      for d in late { #expect(try !b.reopen().contains(SHA256.hash(d))) }
      #expect(try b.reopen().readDocument(.index, maxSize: 10) == Data("v2".utf8))
    }
  }

  @Test(arguments: BackendKind.allCases) func aSourceWhoseBytesChangedIsRefusedAndNoIndexIsWritten(_ kind: BackendKind)
    throws
  {
    try withBackend(kind) { b in
      let good = blobs(2, seed: 400)
      let (claimed, actual) = (Data("as hashed".utf8), Data("as edited".utf8))
      let changed = BlobSource(id: SHA256.hash(claimed), size: claimed.count, origin: "recipes/a/edited.toml") {
        actual
      }
      let change = StoreChange(documents: [(.index, Data("v1".utf8))], precondition: .indexAbsent)
      do {
        try b.store.apply(change, sources: good.map(BlobSource.init) + [changed])
        Issue.record("a source that changed was written")
      } catch let e as TsukuError {
        #expect(e.message.contains("recipes/a/edited.toml") && e.message.contains("changed while publishing"))
      }
      #expect(try b.reopen().readDocument(.index, maxSize: 10) == nil)
      #expect(try !b.reopen().contains(SHA256.hash(claimed)))
      #expect(try !b.reopen().contains(SHA256.hash(actual)))
      if let n = try commitCount(b.store) { #expect(n == 0) }
    }
  }
}

@Suite struct BlobSourceTests {
  @Test func batchesHoldAtMostTheLimitUnlessOneBlobIsLarger() throws {
    let sizes = [40, 40, 40, 150, 10, 10, 90, 5]
    let data = sizes.enumerated().map { Data(repeating: UInt8($0.offset), count: $0.element) }
    var seen = [[Int]]()
    try BlobSource.batches(data.map(BlobSource.init), maxBytes: 100) { batch in
      #expect(batch.allSatisfy { $0.1 == data[$0.0] })
      seen.append(batch.map(\.1.count))
    }
    #expect(seen == [[40, 40], [40], [150], [10, 10], [90, 5]])
    // Large sources first, one per batch; the others in order.
    var order = [Int]()
    try BlobSource.batches(data.map(BlobSource.init), maxBytes: 100, largeBytes: 90) { batch in order += batch.map(\.0)
    }
    #expect(order == [3, 6, 0, 1, 2, 4, 5, 7])
    var counted = [Int]()
    try BlobSource.batches(data.map(BlobSource.init), maxBytes: 1000, maxCount: 3) { counted.append($0.count) }
    #expect(counted == [3, 3, 2])
  }

  @Test func aFileSourceIsCheckedWhenRead() throws {
    let dir = try TemporaryDirectory()
    let path = dir.file("recipe.toml")
    let bytes = Data("name = 'x'\n".utf8)
    try bytes.write(to: URL(fileURLWithPath: path))
    let source = BlobSource.file(path, id: SHA256.hash(bytes), size: bytes.count)
    #expect(try source.load() == bytes)
    for edit in [Data("name = 'y'\n".utf8), Data("name = 'longer'\n".utf8)] {
      try edit.write(to: URL(fileURLWithPath: path))
      let e = #expect(throws: TsukuError.self) { try source.load() }
      #expect(e?.message.contains(path) == true)
      #expect(e?.message.contains("changed while publishing") == true)
    }
  }

  @Test func loadAllKeepsTheOrderAndThrowsTheFirstFailure() throws {
    let data = (0..<200).map { Data("blob \($0)".utf8) }
    #expect(try BlobSource.loadAll(data.map(BlobSource.init)) == data)
    let bad = BlobSource(id: SHA256.hash("x"), size: 1, origin: "bad one") { Data("y".utf8) }
    let e = #expect(throws: TsukuError.self) { try BlobSource.loadAll(data.map(BlobSource.init) + [bad]) }
    #expect(e?.message.contains("bad one") == true)
  }

  @Test func aPackBuiltFromSourcesIsByteForBytePackBuild() throws {
    let data = (0..<60).map { Data("blob \($0) ".utf8) + Data(repeating: UInt8($0), count: $0 * 7) } + [Data()]
    let reads = ReadCounter()
    let pack = try PackBuilder.source((data + data.prefix(5)).map(reads.source))
    // Hashing the pack reads each distinct blob once; writing it reads them again.
    #expect(reads.reads == data.count)
    let bytes = try pack.load()
    #expect(bytes == Pack.build(data))
    #expect(pack.id == SHA256.hash(bytes) && pack.size == bytes.count)
    #expect(try Pack(bytes).entries.count == data.count)
  }
}
