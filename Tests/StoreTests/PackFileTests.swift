import Foundation
import Testing

@testable import Store
import TestSupport

/// Packs handled on disk: merged by the kernel, verified with bounded buffers, read by pread.
@Suite struct PackFileTests {
  static func write(_ blobs: [Data], in dir: String, _ name: String) throws -> String {
    let path = dir + "/" + name + ".pack"
    try Pack.build(blobs).write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test func mergedPacksHoldEveryBlobOnceAndVerify() throws {
    let tmp = try TemporaryDirectory()
    let a = (0..<40).map { Data("a \($0) ".utf8) + Data(repeating: UInt8($0), count: $0 * 10) }
    let b = (20..<60).map { Data("a \($0) ".utf8) + Data(repeating: UInt8($0), count: $0 * 10) }
    let p1 = try Self.write(a, in: tmp.path, "one")
    let p2 = try Self.write(b, in: tmp.path, "two")
    let merged = try PackFile.merge([p1, p2], into: tmp.path)
    let pack = try Pack(try Data(contentsOf: URL(fileURLWithPath: merged)))
    #expect(pack.entries.count == 60)
    for blob in a + b {
      let e = try #require(pack.entry(SHA256.hash(blob)))
      #expect(try pack.blob(e) == blob)
    }
    let r = try PackFile.verify(merged, chunk: 256)
    #expect(r.corrupt.isEmpty)
    #expect(r.blobs == 60)
    #expect(r.bytes == Set(a + b).reduce(0) { $0 + $1.count })
    // Named by its table: the same inputs make the same file.
    #expect(try PackFile.merge([p1, p2], into: tmp.path) == merged)
  }

  /// Many inputs with overlapping ids and tables longer than one read of the merge's
  /// per-input buffer (256 entries): every id once, from the first input that has it.
  @Test func aMergeOfManyOverlappingPacksKeepsEachBlobOnce() throws {
    let tmp = try TemporaryDirectory()
    func blob(_ i: Int) -> Data { Data("m \(i) ".utf8) + Data(repeating: UInt8(i & 0xff), count: i % 97) }
    var paths = [String]()
    var all = Set<Data>()
    for k in 0..<12 {
      let blobs = (k * 250..<(k * 250 + 600)).map(blob)
      all.formUnion(blobs)
      paths.append(try Self.write(blobs, in: tmp.path, "in\(k)"))
    }
    let merged = try PackFile.merge(paths, into: tmp.path)
    let pack = try Pack(try Data(contentsOf: URL(fileURLWithPath: merged)))
    #expect(pack.entries.count == all.count)
    for b in all { #expect(try pack.entry(SHA256.hash(b)).map { try pack.blob($0) } == b) }
    #expect(try PackFile.verify(merged).corrupt.isEmpty)
  }

  @Test func aRewrittenPackLacksTheDroppedBlobsAndKeepsTheRest() throws {
    let tmp = try TemporaryDirectory()
    let blobs = (0..<700).map { Data("r \($0) ".utf8) + Data(repeating: 3, count: $0 % 50) }
    let p1 = try Self.write(Array(blobs[0..<400]), in: tmp.path, "one")
    let p2 = try Self.write(Array(blobs[300...]), in: tmp.path, "two")
    let merged = try PackFile.merge([p1, p2], into: tmp.path)
    let drop = Set(blobs.indices.filter { $0 % 3 == 0 }.map { SHA256.hash(blobs[$0]) })
    let (out, dropped) = try PackFile.rewrite(merged, dropping: drop, into: tmp.path)
    #expect(Set(dropped) == drop)
    let path = try #require(out)
    #expect(path != merged)
    let pack = try Pack(try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(pack.entries.count == blobs.count - drop.count)
    for (i, b) in blobs.enumerated() {
      let e = pack.entry(SHA256.hash(b))
      if i % 3 == 0 { #expect(e == nil) } else { #expect(try e.map { try pack.blob($0) } == b) }
    }
    #expect(try PackFile.verify(path).corrupt.isEmpty)
    // Nothing to drop: the same file; everything dropped: no file.
    #expect(try PackFile.rewrite(path, dropping: drop, into: tmp.path).path == path)
    #expect(try PackFile.rewrite(path, dropping: Set(blobs.map { SHA256.hash($0) }), into: tmp.path).path == nil)
  }

  @Test func attackAPackTableOutOfOrderIsRefusedByMergeAndRewrite() throws {
    let tmp = try TemporaryDirectory()
    let blobs = (0..<5).map { Data("o \($0)".utf8) }
    let path = try Self.write(blobs, in: tmp.path, "bad")
    // Swap the first two table entries (44 bytes each after the 12-byte header).
    var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    let first = bytes[12..<56]
    let second = bytes[56..<100]
    bytes.replaceSubrange(12..<100, with: second + first)
    try bytes.write(to: URL(fileURLWithPath: path))
    let other = try Self.write([Data("fine".utf8)], in: tmp.path, "fine")
    #expect(throws: TsukuError.self) { _ = try PackFile.merge([other, path], into: tmp.path) }
    #expect(throws: TsukuError.self) { _ = try PackFile.rewrite(path, dropping: [SHA256.hash(blobs[0])], into: tmp.path) }
    #expect(throws: TsukuError.self) { _ = try PackFile.table(path) }
  }

  /// Lookups start where an id's leading bits place it and gallop: every blob of a large
  /// cached pack is found, and ids that are not there (the extremes among them) are not.
  @Test func everyBlobOfALargeCachedPackIsFoundAndNoOtherIs() throws {
    let tmp = try TemporaryDirectory()
    let store = DirectoryStore(path: tmp.path + "/cache")
    let blobs = (0..<6000).map { Data("large \($0)".utf8) }
    let paths = try store.addPacks([Pack.build(Array(blobs[0..<3000])), Pack.build(Array(blobs[3000...]))])
    try store.mergePacks(paths)
    #expect(store.packFiles().count == 1)
    for b in blobs { #expect(try store.get(SHA256.hash(b), maxSize: 100) == b) }
    let absent = [ObjectID(bytes: [UInt8](repeating: 0, count: 32)), ObjectID(bytes: [UInt8](repeating: 0xff, count: 32))]
      + (0..<500).map { SHA256.hash(Data("absent \($0)".utf8)) }
    for id in absent { #expect(try !store.contains(id)) }
  }

  @Test func attackTamperedBlobInACachedPackIsFoundByVerifyAndNotServed() throws {
    let tmp = try TemporaryDirectory()
    let store = DirectoryStore(path: tmp.path + "/cache")
    let blobs = (0..<30).map { Data("blob \($0) ".utf8) + Data(repeating: 7, count: 100) }
    let paths = try store.addPacks([Pack.build(Array(blobs[0..<15])), Pack.build(Array(blobs[15...]))])
    try store.mergePacks(paths)
    let files = store.packFiles()
    #expect(files.count == 1)
    // Flip one byte of the last blob's data (the end of the file).
    let fh = try FileHandle(forUpdating: URL(fileURLWithPath: files[0]))
    let end = try fh.seekToEnd()
    try fh.seek(toOffset: end - 3)
    try fh.write(contentsOf: Data([0x41]))
    try fh.close()
    let r = try PackFile.verify(files[0])
    #expect(r.corrupt.count == 1)
    let bad = r.corrupt[0]
    #expect(throws: TsukuError.self) { _ = try store.get(bad, maxSize: 1 << 20) }
    // Every other blob still reads back.
    for b in blobs where SHA256.hash(b) != bad { #expect(try store.get(SHA256.hash(b), maxSize: 1 << 20) == b) }
  }

  @Test func aTruncatedPackFileIsRefusedNotTrapped() throws {
    let tmp = try TemporaryDirectory()
    let p = try Self.write([Data("a".utf8), Data("bb".utf8)], in: tmp.path, "x")
    let full = try Data(contentsOf: URL(fileURLWithPath: p))
    try full.prefix(30).write(to: URL(fileURLWithPath: p))
    #expect(throws: TsukuError.self) { _ = try PackFile.verify(p) }
    #expect(throws: TsukuError.self) { _ = try PackFile.merge([p, p], into: tmp.path) }
  }
}
