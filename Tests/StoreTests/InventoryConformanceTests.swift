import Foundation
import TestSupport
import Testing

@testable import Store

/// Listing with sizes and dates, the quarantine and the index archive, over every backend
/// (the conformance suite's backends; plain https must refuse).
@Suite struct InventoryConformanceTests {
  @Test(arguments: BackendKind.allCases) func inventoryListsSizesAndArrivalTimes(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      // Git commit times and S3 LastModified have whole seconds.
      let before = Date().addingTimeInterval(-2)
      let data = blobs(4, seed: 30)
      try b.store.apply(StoreChange(objects: data, message: "put"))
      guard kind.canList else {
        #expect(errorCode { _ = try b.store.inventory(.live, dated: true) } == .usage)
        #expect(errorCode { _ = try b.store.move([SHA256.hash(data[0])], from: .live, to: .quarantine) } == .usage)
        #expect(errorCode { try b.store.remove([SHA256.hash(data[0])], from: .quarantine) } == .usage)
        return
      }
      let after = Date().addingTimeInterval(2)
      let inv = try b.reopen().inventory(.live, dated: true)
      #expect(inv.map(\.id) == data.map { SHA256.hash($0) }.sorted())
      for d in data {
        let o = try #require(inv.first { $0.id == SHA256.hash(d) })
        #expect(o.size == d.count)
        let m = try #require(o.modified)
        #expect(m >= before && m <= after, "modified \(m) outside \(before)...\(after)")
      }
      #expect(try b.store.inventory(.live, dated: false).allSatisfy { $0.modified == nil })
      #expect(try b.store.inventory(.quarantine, dated: true).isEmpty)
    }
  }

  @Test(arguments: BackendKind.allCases.filter(\.canList)) func quarantineMovesRestoresAndDeletes(_ kind: BackendKind) throws {
    try withBackend(kind) { b in
      let data = blobs(3, seed: 40)
      let ids = data.map { SHA256.hash($0) }
      try b.store.apply(StoreChange(objects: data, message: "put"))
      let absent = SHA256.hash("never written")
      #expect(try b.store.move([ids[0], ids[1], absent], from: .live, to: .quarantine) == 2)
      for s in [b.store, try b.reopen()] {
        // Quarantined blobs are gone for readers; the rest is untouched.
        #expect(errorCode { _ = try s.get(ids[0], maxSize: 1000) } == .notFound)
        #expect(try !s.contains(ids[1]))
        #expect(try s.get(ids[2], maxSize: 1000) == data[2])
        #expect(try s.list() == [ids[2]])
        let q = try s.inventory(.quarantine, dated: true)
        #expect(q.map(\.id) == [ids[0], ids[1]].sorted())
        #expect(q.allSatisfy { $0.modified != nil && $0.size >= 100 })
      }
      #expect(try b.store.move([ids[0]], from: .quarantine, to: .live) == 1)
      #expect(try b.reopen().get(ids[0], maxSize: 1000) == data[0])
      try b.store.remove([ids[1], absent], from: .quarantine)
      let s = try b.reopen()
      #expect(try s.inventory(.quarantine, dated: false).isEmpty)
      #expect(try s.list() == [ids[0], ids[2]].sorted())
      #expect(errorCode { _ = try s.get(ids[1], maxSize: 1000) } == .notFound)
    }
  }

  @Test(arguments: BackendKind.allCases) func archivedIndexDocumentsRoundTrip(_ kind: BackendKind) throws {
    #expect(DocumentName(path: "index/12.index.json") == .archivedIndex(12))
    #expect(DocumentName.archivedIndex(7).path == "index/7.index.json")
    #expect(DocumentName(path: "index/012.index.json") == nil)
    #expect(DocumentName(path: "index/x.index.json") == nil)
    #expect(DocumentName(path: "root/3.root.json") == .root(3))
    try withBackend(kind) { b in
      let v1 = Data(#"{"archived":1}"#.utf8)
      let current = Data(#"{"current":2}"#.utf8)
      try b.store.apply(StoreChange(documents: [(.index, current), (.archivedIndex(1), v1)]))
      let s = try b.reopen()
      #expect(try s.readDocument(.archivedIndex(1), maxSize: 1000) == v1)
      #expect(try s.readDocument(.archivedIndex(2), maxSize: 1000) == nil)
      #expect(try s.readDocument(.index, maxSize: 1000) == current)
    }
  }

  @Test func gitArrivalIsTheStartOfTheUnbrokenRunOfCommitsFromTheTip() throws {
    let dir = try TemporaryDirectory()
    let store = try GitStore(repository: try makeGitRepository(at: dir.file("repo")))
    let t0 = Date(timeIntervalSince1970: 1_760_000_000)
    let day = 86400.0
    let (a, b, c) = (sampleData(count: 50, seed: 1), sampleData(count: 60, seed: 2), sampleData(count: 70, seed: 3))
    let (ia, ib, ic) = (SHA256.hash(a), SHA256.hash(b), SHA256.hash(c))
    try store.apply(StoreChange(objects: [a, b], documents: [(.index, Data("1".utf8))], time: t0))
    try store.apply(StoreChange(objects: [c], documents: [(.index, Data("2".utf8))], time: t0 + day))
    // A leaves the tip, then comes back: its arrival is the return, not the first write.
    try store.apply(StoreChange(documents: [(.index, Data("3".utf8))], time: t0 + 2 * day, keepOnly: [ib, ic]))
    try store.apply(StoreChange(objects: [a], documents: [(.index, Data("4".utf8))], time: t0 + 3 * day))
    try store.apply(StoreChange(documents: [(.index, Data("5".utf8))], time: t0 + 4 * day))
    let inv = Dictionary(uniqueKeysWithValues: try store.inventory(.live, dated: true).map { ($0.id, $0) })
    #expect(inv[ia]?.modified == t0 + 3 * day)
    #expect(inv[ib]?.modified == t0)
    #expect(inv[ic]?.modified == t0 + day)
    #expect(inv[ic]?.size == 70)
  }
}
