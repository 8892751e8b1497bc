import Foundation
import TestSupport
import Testing

@testable import Store

/// Every backend the conformance suite runs against.
enum BackendKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case memory
  case directory
  /// A work-tree repository with the layout at its root.
  case git
  /// A bare repository with the layout in `registry-index/store`.
  case gitSubfolder
  /// A fresh bucket on the test S3 server (SeaweedFS), layout under a prefix.
  case s3
  /// The same kind of bucket read anonymously over http (`HTTPStore`); writes go through s3.
  case https

  var testDescription: String { rawValue }

  /// Whether the backend can list its blobs (plain http cannot).
  var canList: Bool { self != .https }
}

/// The S3 test server, or a skipped test case when SeaweedFS cannot be installed here.
func s3Server() throws -> S3TestServer {
  do {
    return try S3TestServer.require()
  } catch let e as S3TestServer.S3Unavailable {
    try Test.cancel("\(e)")
  }
}

/// Reads through one store and writes through another: the https backend reads anonymously
/// what the s3 backend wrote to the same bucket (and lists and removes as an https URL opened
/// for writing does: it refuses).
final class ReadWriteStore: ObjectStore {
  let reader: any ObjectStore
  let writer: any ObjectStore
  init(reader: any ObjectStore, writer: any ObjectStore) {
    self.reader = reader
    self.writer = writer
  }
  var location: String { reader.location }
  func get(_ id: ObjectID, maxSize: Int) throws -> Data { try reader.get(id, maxSize: maxSize) }
  func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data] { try reader.getMany(wanted) }
  func contains(_ id: ObjectID) throws -> Bool { try reader.contains(id) }
  func list() throws -> [ObjectID] { try reader.list() }
  func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    try reader.readDocument(name, maxSize: maxSize)
  }
  func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    try reader.readDocument(name, maxSize: maxSize, ifNoneMatch: etag)
  }
  func apply(_ change: StoreChange) throws -> ApplyReport { try writer.apply(change) }
  func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    try writer.apply(change, sources: sources)
  }
  func remove(_ ids: [ObjectID]) throws { try reader.remove(ids) }
}

/// One backing store, a handle on it, and the test hooks the suite needs.
final class Backend {
  let kind: BackendKind
  let store: any ObjectStore
  private let directory: TemporaryDirectory?
  private let repository: String
  private var bucket: String
  private var server: S3TestServer?
  static let prefix = "registry/v1"

  static let subfolder = "registry-index/store"

  init(_ kind: BackendKind) throws {
    self.kind = kind
    bucket = ""
    server = nil
    switch kind {
    case .memory:
      directory = nil
      repository = ""
      store = MemoryStore()
    case .directory:
      let dir = try TemporaryDirectory()
      directory = dir
      repository = ""
      store = DirectoryStore(path: dir.file("store"))
    case .git, .gitSubfolder:
      let dir = try TemporaryDirectory()
      directory = dir
      let bare = kind == .gitSubfolder
      repository = try makeGitRepository(at: dir.file(bare ? "repo.git" : "repo"), bare: bare)
      store = try GitStore(repository: repository, subdirectory: bare ? Self.subfolder : nil)
    case .s3, .https:
      directory = nil
      repository = ""
      let s = try s3Server()
      server = s
      bucket = try s.makeBucket()
      store = Self.remote(kind, server: s, bucket: bucket)
    }
  }

  private static func remote(_ kind: BackendKind, server: S3TestServer, bucket: String) -> any ObjectStore {
    let s3 = server.store(bucket: bucket, prefix: prefix)
    if kind == .s3 { return s3 }
    let http = HTTPStore(baseURL: server.publicURL(bucket: bucket, prefix: prefix), transport: CurlTransport())
    return ReadWriteStore(reader: ReadOnlyHTTPStore(http), writer: s3)
  }

  /// A second, independent handle on the same backing store ("someone else").
  func reopen() throws -> any ObjectStore {
    switch kind {
    case .memory: store
    case .directory: DirectoryStore(path: (store as! DirectoryStore).root)
    case .git: try GitStore(repository: repository)
    case .gitSubfolder: try GitStore(repository: repository, subdirectory: Self.subfolder)
    case .s3, .https: Self.remote(kind, server: server!, bucket: bucket)
    }
  }

  /// Replaces a blob's bytes without renaming it.
  func tamper(_ id: ObjectID, with data: Data) throws {
    switch kind {
    case .memory: (store as! MemoryStore).tamper(id, with: data)
    case .directory:
      try data.write(to: URL(fileURLWithPath: (store as! DirectoryStore).root + "/" + id.path))
    case .git, .gitSubfolder: try (store as! GitStore).commitRaw([(id.path, data)], message: "tamper")
    case .s3, .https: try server!.store(bucket: bucket, prefix: Self.prefix).putRaw(id.path, data)
    }
  }
}

/// Runs `body` with a fresh backend that is cleaned up afterwards.
func withBackend(_ kind: BackendKind, _ body: (Backend) throws -> Void) throws {
  let backend = try Backend(kind)
  try withExtendedLifetime(backend) { try body(backend) }
}

/// The error code `body` throws, or nil if it throws none (any other error fails the test).
func errorCode(_ body: () throws -> Void) -> TsukuError.Code? {
  do {
    try body()
    return nil
  } catch let e as TsukuError {
    return e.code
  } catch {
    Issue.record("unexpected error \(error)")
    return nil
  }
}

func blobs(_ n: Int, seed: UInt64 = 1, size: Int = 100) -> [Data] {
  (0..<n).map { sampleData(count: size + $0, seed: seed &+ UInt64($0)) }
}

/// The behaviour every `ObjectStore` must share; `MemoryStore` is the model.
@Suite struct ConformanceTests {
  @Test(arguments: BackendKind.allCases) func putThenGet(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let data = blobs(5) + [Data("x".utf8), sampleData(count: 300_000, seed: 99)]
      let report = try b.store.apply(StoreChange(objects: data, message: "put"))
      #expect(report.objectsWritten == data.count)
      #expect(report.objectsPresent == 0)
      #expect(report.bytesWritten == data.reduce(0) { $0 + $1.count })
      #expect(report.documentsWritten == 0)
      for d in data {
        #expect(try b.store.get(SHA256.hash(d), maxSize: d.count) == d)
        #expect(try b.reopen().get(SHA256.hash(d), maxSize: .max) == d)
      }
      let many = try b.store.getMany(data.map { (SHA256.hash($0), $0.count) } + [(SHA256.hash("absent"), 10)])
      #expect(many.count == data.count)
    }
  }

  @Test(arguments: BackendKind.allCases) func absentBlobIsNotFound(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let absent = SHA256.hash("absent")
      #expect(errorCode { _ = try b.store.get(absent, maxSize: 100) } == .notFound)
      #expect(try !b.store.contains(absent))
      if kind.canList { #expect(try b.store.list().isEmpty) }
      try b.store.apply(StoreChange(objects: blobs(3)))
      #expect(errorCode { _ = try b.store.get(absent, maxSize: 100) } == .notFound)
      #expect(try !b.store.contains(absent))
    }
  }

  @Test(arguments: BackendKind.allCases) func containsAndListAgree(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let first = blobs(12, seed: 10)
      let second = blobs(9, seed: 50)
      try b.store.apply(StoreChange(objects: first))
      try b.store.apply(StoreChange(objects: second))
      let ids = Set((first + second).map { SHA256.hash($0) })
      if kind.canList {
        #expect(try b.store.list() == ids.sorted())
        #expect(try b.reopen().list() == ids.sorted())
      } else {
        #expect(errorCode { _ = try b.store.list() } == .usage)
      }
      for id in ids { #expect(try b.store.contains(id)) }
    }
  }

  @Test(arguments: BackendKind.allCases) func sizeLimitIsIntegrity(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let d = sampleData(count: 100, seed: 7)
      try b.store.apply(StoreChange(objects: [d]))
      #expect(errorCode { _ = try b.store.get(SHA256.hash(d), maxSize: 99) } == .integrity)
      #expect(errorCode { _ = try b.store.get(SHA256.hash(d), maxSize: 0) } == .integrity)
      #expect(try b.store.get(SHA256.hash(d), maxSize: 100) == d)
    }
  }

  @Test(arguments: BackendKind.allCases) func tamperedBlobIsIntegrity(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let (a, c) = (sampleData(count: 64, seed: 1), sampleData(count: 80, seed: 2))
      try b.store.apply(StoreChange(objects: [a, c]))
      var sameSize = a
      sameSize[10] ^= 0xff
      try b.tamper(SHA256.hash(a), with: sameSize)
      try b.tamper(SHA256.hash(c), with: Data("short".utf8))
      for id in [SHA256.hash(a), SHA256.hash(c)] {
        do {
          _ = try b.store.get(id, maxSize: 1000)
          Issue.record("tampered blob '\(id)' was accepted")
        } catch let e as TsukuError {
          #expect(e.code == .integrity)
          #expect(e.message.contains(id.hex))
        }
        #expect(errorCode { _ = try b.reopen().get(id, maxSize: 1000) } == .integrity)
      }
    }
  }

  @Test(arguments: BackendKind.allCases) func documentsRoundTrip(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      #expect(try b.store.readDocument(.index, maxSize: 1000) == nil)
      #expect(try b.store.readDocument(.root(1), maxSize: 1000) == nil)
      let index = Data(#"{"version":1}"#.utf8)
      let root1 = Data(#"{"root":1}"#.utf8)
      let root2 = Data(#"{"root":2,"more":true}"#.utf8)
      let report = try b.store.apply(
        StoreChange(documents: [(.index, index), (.root(1), root1), (.root(2), root2)], message: "docs"))
      #expect(report.documentsWritten == 3)
      for store in [b.store, try b.reopen()] {
        #expect(try store.readDocument(.index, maxSize: index.count) == index)
        #expect(try store.readDocument(.root(1), maxSize: 1000) == root1)
        #expect(try store.readDocument(.root(2), maxSize: 1000) == root2)
        #expect(try store.readDocument(.root(3), maxSize: 1000) == nil)
        #expect(errorCode { _ = try store.readDocument(.index, maxSize: index.count - 1) } == .integrity)
      }
      let index2 = Data(#"{"version":2}"#.utf8)
      try b.store.apply(StoreChange(documents: [(.index, index2)]))
      #expect(try b.store.readDocument(.index, maxSize: 1000) == index2)
      #expect(try b.reopen().readDocument(.index, maxSize: 1000) == index2)
    }
  }

  @Test(arguments: BackendKind.allCases) func indexAbsentPreconditionConflicts(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let index = Data("first".utf8)
      try b.store.apply(StoreChange(documents: [(.index, index)], precondition: .indexAbsent))
      let late = Data("late blob".utf8)
      let change = StoreChange(
        objects: [late], documents: [(.root(1), Data("r".utf8)), (.index, Data("second".utf8))],
        precondition: .indexAbsent)
      #expect(errorCode { try b.store.apply(change) } == .conflict)
      for store in [b.store, try b.reopen()] {
        #expect(try store.readDocument(.index, maxSize: 100) == index)
        #expect(try store.readDocument(.root(1), maxSize: 100) == nil)
      }
      // Blobs are content-addressed, so a directory (or a bucket) may keep the ones it wrote
      // before it saw the conflict; the memory and git backends write nothing at all.
      if kind != .directory { #expect(try !b.store.contains(SHA256.hash(late))) }
    }
  }

  @Test(arguments: BackendKind.allCases) func indexHashPreconditionConflicts(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let v1 = Data("v1".utf8)
      try b.store.apply(StoreChange(documents: [(.index, v1)]))
      let other = try b.reopen()
      try other.apply(StoreChange(documents: [(.index, Data("v2".utf8))], precondition: .indexHash(SHA256.hash(v1))))
      let change = StoreChange(documents: [(.index, Data("v3".utf8))], precondition: .indexHash(SHA256.hash(v1)))
      #expect(errorCode { try b.store.apply(change) } == .conflict)
      #expect(try b.reopen().readDocument(.index, maxSize: 100) == Data("v2".utf8))
      #expect(errorCode { try b.store.apply(StoreChange(precondition: .indexHash(SHA256.hash("v3")))) } == .conflict)
      let v3 = StoreChange(documents: [(.index, Data("v3".utf8))], precondition: .indexHash(SHA256.hash("v2")))
      try b.store.apply(v3)
      #expect(try b.reopen().readDocument(.index, maxSize: 100) == Data("v3".utf8))
    }
  }

  @Test(arguments: BackendKind.allCases) func sameBlobsTwiceArePresent(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let (x, y, z) = (Data("x".utf8), Data("yy".utf8), Data("zzz".utf8))
      let first = try b.store.apply(StoreChange(objects: [x, y]))
      #expect(first.objectsWritten == 2 && first.objectsPresent == 0 && first.bytesWritten == 3)
      let second = try b.store.apply(StoreChange(objects: [x, y, z]))
      #expect(second.objectsWritten == 1 && second.objectsPresent == 2 && second.bytesWritten == 3)
      let third = try b.reopen().apply(StoreChange(objects: [x, y, z]))
      #expect(third.objectsWritten == 0 && third.objectsPresent == 3 && third.bytesWritten == 0)
      let duplicated = Data("dup".utf8)
      let fourth = try b.store.apply(StoreChange(objects: [duplicated, duplicated]))
      #expect(fourth.objectsWritten == 1 && fourth.objectsPresent == 1)
      if kind.canList { #expect(try b.store.list().count == 4) }
    }
  }

  @Test(arguments: BackendKind.allCases) func emptyBlob(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let report = try b.store.apply(StoreChange(objects: [Data()]))
      #expect(report.objectsWritten == 1 && report.bytesWritten == 0)
      let id = SHA256.hash(Data())
      #expect(try b.store.get(id, maxSize: 0) == Data())
      #expect(try b.store.contains(id))
      if kind.canList { #expect(try b.store.list() == [id]) }
    }
  }

  @Test(arguments: BackendKind.allCases) func removeDeletesOrRefuses(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let d = Data("doomed".utf8)
      try b.store.apply(StoreChange(objects: [d]))
      try b.store.remove([])
      switch kind {
      case .git, .gitSubfolder, .https:
        #expect(errorCode { try b.store.remove([SHA256.hash(d)]) } == .usage)
        #expect(try b.store.contains(SHA256.hash(d)))
      case .memory, .directory, .s3:
        try b.store.remove([SHA256.hash(d), SHA256.hash("never there")])
        #expect(try !b.store.contains(SHA256.hash(d)))
        #expect(errorCode { _ = try b.store.get(SHA256.hash(d), maxSize: 100) } == .notFound)
      }
    }
  }

  @Test(arguments: BackendKind.allCases) func agreesWithTheModel(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let model = MemoryStore()
      let changes = [
        StoreChange(objects: blobs(4, seed: 1), documents: [(.index, Data("1".utf8))]),
        StoreChange(objects: blobs(6, seed: 3), documents: [(.root(1), Data("r1".utf8))]),
        StoreChange(objects: blobs(2, seed: 20) + [Data()], documents: [(.index, Data("2".utf8))]),
      ]
      for change in changes {
        var expected = try model.apply(change)
        var actual = try b.store.apply(change)
        expected.commit = nil
        actual.commit = nil
        #expect(actual == expected)
      }
      if kind.canList { #expect(try b.store.list() == model.list()) }
      for id in try model.list() { #expect(try b.store.get(id, maxSize: .max) == model.get(id, maxSize: .max)) }
      #expect(try b.store.readDocument(.index, maxSize: 10) == model.readDocument(.index, maxSize: 10))
      #expect(try b.store.readDocument(.root(1), maxSize: 10) == model.readDocument(.root(1), maxSize: 10))
    }
  }

  @Test(arguments: BackendKind.allCases) func conditionalDocumentRead(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      #expect(try b.store.readDocument(.index, maxSize: 100, ifNoneMatch: nil) == .absent)
      #expect(try b.store.readDocument(.index, maxSize: 100, ifNoneMatch: "\"stale\"") == .absent)
      let v1 = Data(#"{"version":1}"#.utf8)
      try b.store.apply(StoreChange(documents: [(.index, v1)]))
      guard case .found(let got, let tag?) = try b.store.readDocument(.index, maxSize: 100, ifNoneMatch: nil) else {
        Issue.record("index.json was not found with an etag")
        return
      }
      #expect(got == v1)
      #expect(try b.store.readDocument(.index, maxSize: 100, ifNoneMatch: tag) == .notModified)
      #expect(try b.reopen().readDocument(.index, maxSize: 100, ifNoneMatch: tag) == .notModified)
      #expect(errorCode { _ = try b.store.readDocument(.index, maxSize: v1.count - 1, ifNoneMatch: nil) } == .integrity)
      let v2 = Data(#"{"version":2}"#.utf8)
      try b.store.apply(StoreChange(documents: [(.index, v2)]))
      guard case .found(let again, let tag2) = try b.store.readDocument(.index, maxSize: 100, ifNoneMatch: tag) else {
        Issue.record("a changed index.json was reported unchanged")
        return
      }
      #expect(again == v2 && tag2 != tag)
    }
  }
}
