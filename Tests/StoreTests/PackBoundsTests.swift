import Foundation
import Testing

@testable import Store
import TestSupport

/// Crafted pack tables (offsets below zero or past the end of the integers, sizes past the
/// pack, counts past the file) through every pack reader: each is refused with an integrity
/// error naming the entry, never a trap, a read outside a mapping or a huge allocation.
@Suite struct PackBoundsTests {
  static let blobs = (0..<5).map { Data("bounds \($0) ".utf8) + Data(repeating: UInt8($0), count: 40 + $0) }

  /// The crafted values of entry 1's offset (or the count), by name.
  static let crafts: [String: UInt64] = [
    "negative offset": 0xFFFF_FF00_0000_0000,  // -2^40: far below any mapping
    "minus one": 0xFFFF_FFFF_FFFF_FFFF,
    "overflowing offset": 0x8000_0000_0000_0000,  // Int.min: `dataLength - offset` overflowed
    "offset past the end": 0x7FFF_FFFF_FFFF_FFF0,  // `base + offset` overflowed in a merge
  ]

  /// A built pack with entry `entry`'s offset replaced by `offset`.
  static func crafted(offset: UInt64, entry: Int = 1) -> [UInt8] {
    var b = [UInt8](Pack.build(blobs))
    let at = 12 + entry * 44 + 32
    withUnsafeBytes(of: offset.bigEndian) { for k in 0..<8 { b[at + k] = $0[k] } }
    return b
  }

  /// A pack header declaring `count` entries followed by `tail` bytes.
  static func header(count: UInt32, tail: Int) -> [UInt8] {
    var b = Pack.magic
    withUnsafeBytes(of: count.bigEndian) { b.append(contentsOf: $0) }
    return b + [UInt8](repeating: 0, count: tail)
  }

  static func expectMalformed(_ what: String, _ body: () throws -> Void) {
    let e = #expect(throws: TsukuError.self, "\(what)") { try body() }
    #expect(e?.code == .integrity, "\(what)")
    #expect(e?.reason == .malformed, "\(what)")
  }

  @Test(arguments: ["negative offset", "minus one", "overflowing offset", "offset past the end"])
  func aCraftedOffsetIsRefusedByEveryReader(kind: String) throws {
    let b = Self.crafted(offset: Self.crafts[kind]!)
    let dir = try TemporaryDirectory()
    do {
      let path = dir.file("crafted.pack")
      try Data(b).write(to: URL(fileURLWithPath: path))
      let good = try DirectoryStore(path: dir.file("store")).addPacks([Pack.build([Data("other".utf8)])])[0]
      Self.expectMalformed("Pack.init") { _ = try Pack(Data(b)) }
      Self.expectMalformed("PackFile.table") { _ = try PackFile.table(path) }
      Self.expectMalformed("PackFile.verify") { _ = try PackFile.verify(path) }
      Self.expectMalformed("PackFile.checkTable") { try PackFile.checkTable(path) }
      Self.expectMalformed("PackFile.merge") { _ = try PackFile.merge([good, path], into: dir.path) }
      Self.expectMalformed("PackFile.rewrite") {
        _ = try PackFile.rewrite(path, dropping: [SHA256.hash(Self.blobs[3])], into: dir.path)
      }
      #expect(PackFile.namedBlobs(path).count == Self.blobs.count)
    }
  }

  /// The same table in a cached pack: lookups skip the bad entry, the others are served, and
  /// a removal or a merge sets the pack aside instead of trapping.
  @Test(arguments: ["negative offset", "overflowing offset", "offset past the end"])
  func aCraftedCachedPackIsSetAsideNotTrapped(kind: String) throws {
    let dir = try TemporaryDirectory()
    do {
      let store = DirectoryStore(path: dir.file("cache"))
      try FileManager.default.createDirectory(atPath: dir.file("cache/packs"), withIntermediateDirectories: true)
      let path = dir.file("cache/packs/crafted.pack")
      try Data(Self.crafted(offset: Self.crafts[kind]!)).write(to: URL(fileURLWithPath: path))
      let bad = SHA256.hash(Self.blobs[1])
      #expect(!(try store.contains(bad)))
      #expect(throws: TsukuError.self) { try store.get(bad, maxSize: 1 << 20) }
      #expect(try store.get(SHA256.hash(Self.blobs[2]), maxSize: 1 << 20) == Self.blobs[2])
      #expect(!store.sizes().contains { $0.0 == bad })
      // A merge with another pack: the crafted one is set aside, the other kept.
      let other = try store.addPacks([Pack.build([Data("other".utf8)])])[0]
      let merged = try store.mergePacks([path, other])
      #expect(merged == other)
      let damaged = store.takeDamagedPacks()
      #expect(damaged.map(\.path) == [path])
      #expect(damaged.first?.blobs.count == Self.blobs.count)
      #expect(damaged.first?.movedTo.map { FileManager.default.fileExists(atPath: $0) } == true)
      #expect(!FileManager.default.fileExists(atPath: path))
      #expect(try store.get(SHA256.hash(Data("other".utf8)), maxSize: 100) == Data("other".utf8))
      // A removal over a crafted pack does not stop either.
      try Data(Self.crafted(offset: Self.crafts[kind]!)).write(to: URL(fileURLWithPath: path))
      store.rereadPacks()
      try store.remove([SHA256.hash(Data("other".utf8))])
      #expect(store.takeDamagedPacks().map(\.path) == [path])
      #expect(store.packFiles().isEmpty)
    }
  }

  @Test func countsPastTheFileOrTheLimitAreRefused() throws {
    let dir = try TemporaryDirectory()
    do {
      for (count, tail) in [(UInt32.max, 100), (UInt32(Pack.maxEntries + 1), 0), (3, 44 * 2), (1, 43)] {
        let b = Self.header(count: count, tail: tail)
        let path = dir.file("c\(count)-\(tail).pack")
        try Data(b).write(to: URL(fileURLWithPath: path))
        Self.expectMalformed("Pack.init \(count)") { _ = try Pack(Data(b)) }
        Self.expectMalformed("PackFile.table \(count)") { _ = try PackFile.table(path) }
        Self.expectMalformed("PackFile.checkTable \(count)") { try PackFile.checkTable(path) }
      }
      // A cached pack declaring more entries than its file holds is not mapped, nor listed.
      try FileManager.default.createDirectory(atPath: dir.file("cache/packs"), withIntermediateDirectories: true)
      try Data(Self.header(count: UInt32.max, tail: 44)).write(
        to: URL(fileURLWithPath: dir.file("cache/packs/big.pack")))
      let store = DirectoryStore(path: dir.file("cache"))
      #expect(store.sizes().isEmpty)
      #expect(store.checkPacks().count == 1)
    }
  }

  /// A streamed part of the declared size and count whose table holds a crafted offset: its
  /// check (run when its last byte arrives, before the pack's own hash is compared) refuses
  /// it and the commit reports it; nothing is read outside the part's data.
  @Test(arguments: ["negative offset", "minus one", "overflowing offset", "offset past the end"])
  func aCraftedStreamedPartIsRefusedBeforeItsDataIsRead(kind: String) throws {
    let dir = try TemporaryDirectory()
    do {
      let bytes = Data(Self.crafted(offset: Self.crafts[kind]!))
      let part = PackAssembly.Part(id: SHA256.hash(Pack.build(Self.blobs)), size: bytes.count, count: Self.blobs.count)
      let a = try PackAssembly(parts: [part], in: dir.path) { _ in "pack 'crafted' from 'test:'" }
      #expect(PackAssemblyTests.feed(a.sink(0), bytes))
      let e = #expect(throws: TsukuError.self) { try a.commit(arrived: [true]) }
      #expect(e?.code == .integrity)
      #expect(e?.message.contains("pack 'crafted' from 'test:' is malformed: entry 1") == true)
      #expect(PackAssemblyTests.leftovers(dir.path).isEmpty)
    }
  }

  @Test func declaredSizesThatOverflowAreRefused() throws {
    let dir = try TemporaryDirectory()
    do {
      let parts = [
        PackAssembly.Part(id: SHA256.hash("a"), size: Int.max - 10, count: 0),
        PackAssembly.Part(id: SHA256.hash("b"), size: Int.max - 10, count: 0),
      ]
      let e = #expect(throws: TsukuError.self) { _ = try PackAssembly(parts: parts, in: dir.path) { _ in "p" } }
      #expect(e?.code == .integrity)
    }
  }
}
