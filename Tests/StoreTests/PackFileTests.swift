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
