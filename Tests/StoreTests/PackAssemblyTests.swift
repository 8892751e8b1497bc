import Foundation
import Testing

@testable import Store
import TestSupport

/// A cold sync's packs written once, each into its place in one merged pack as it arrives.
@Suite struct PackAssemblyTests {
  static func blob(_ i: Int) -> Data { Data("asm \(i) ".utf8) + Data(repeating: UInt8(i & 0xff), count: i % 301) }

  /// Packs of consecutive blobs; `overlap` blobs shared by neighbours.
  static func packs(_ n: Int, each: Int, overlap: Int = 0) -> [(part: PackAssembly.Part, bytes: Data, blobs: [Data])] {
    (0..<n).map { k in
      let start = k * (each - overlap)
      let blobs = (start..<(start + each)).map(blob)
      let bytes = Pack.build(blobs)
      return (PackAssembly.Part(id: SHA256.hash(bytes), size: bytes.count, count: blobs.count), bytes, blobs)
    }
  }

  /// Feeds `bytes` to `sink` in pieces of varying sizes, as a transport would.
  static func feed(_ sink: any BodySink, _ bytes: Data, piece: Int = 1000) -> Bool {
    sink.restart()
    var at = 0
    var size = 1
    while at < bytes.count {
      let n = min(size, bytes.count - at)
      let ok = bytes.withUnsafeBytes { sink.write(UnsafeRawBufferPointer(rebasing: $0[at..<(at + n)])) }
      if !ok { return false }
      at += n
      size = size % piece + 7
    }
    return true
  }

  static func describe(_ p: PackAssembly.Part) -> String { "pack '\(p.id.hex.prefix(16))' from 'test:'" }

  static func leftovers(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(".tmp-") }
  }

  @Test func assembledPacksHoldEveryBlobOnceAndVerify() throws {
    let tmp = try TemporaryDirectory()
    // Neighbours share 30 blobs: the merged table keeps one of each, the gap goes unused.
    let list = Self.packs(5, each: 400, overlap: 30)
    let a = try PackAssembly(parts: list.map(\.part), in: tmp.path, describe: Self.describe)
    // Out of order, as parallel transfers finish.
    for i in [3, 0, 4, 2, 1] { #expect(Self.feed(a.sink(i), list[i].bytes)) }
    let out = try a.commit(arrived: [true, true, true, true, true])
    let path = try #require(out.path)
    let all = Set(list.flatMap(\.blobs))
    #expect(out.blobs == all.count)
    let pack = try Pack(try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(pack.entries.count == all.count)
    for b in all { #expect(try pack.entry(SHA256.hash(b)).map { try pack.blob($0) } == b) }
    let verified = try PackFile.verify(path)
    #expect(verified.corrupt.isEmpty && verified.blobs == all.count)
    // Named like a merge of the same packs: by its header and table.
    #expect(URL(fileURLWithPath: path).lastPathComponent.hasSuffix(".pack"))
    #expect(Self.leftovers(tmp.path).isEmpty)
  }

  @Test func aPackThatDidNotArriveIsLeftOutAndTheOthersKept() throws {
    let tmp = try TemporaryDirectory()
    let list = Self.packs(3, each: 50)
    let a = try PackAssembly(parts: list.map(\.part), in: tmp.path, describe: Self.describe)
    #expect(Self.feed(a.sink(0), list[0].bytes))
    #expect(Self.feed(a.sink(2), list[2].bytes))
    let path = try #require(try a.commit(arrived: [true, false, true]).path)
    let pack = try Pack(try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(pack.entries.count == 100)
    #expect(pack.entry(SHA256.hash(list[1].blobs[0])) == nil)
    #expect(try pack.entry(SHA256.hash(list[2].blobs[7])).map { try pack.blob($0) } == list[2].blobs[7])
    let none = try PackAssembly(parts: list.map(\.part), in: tmp.path, describe: Self.describe)
    #expect(try none.commit(arrived: [false, false, false]).path == nil)
    #expect(Self.leftovers(tmp.path).isEmpty)
  }

  /// A retry sends the body again from its first byte: the second copy replaces the first.
  @Test func aRestartedPackIsWrittenAgainAndCheckedAgain() throws {
    let tmp = try TemporaryDirectory()
    let list = Self.packs(2, each: 60)
    let a = try PackAssembly(parts: list.map(\.part), in: tmp.path, describe: Self.describe)
    var wrong = list[0].bytes
    wrong[wrong.count - 1] ^= 0xff
    #expect(Self.feed(a.sink(0), wrong))  // a whole first attempt, corrupt
    #expect(Self.feed(a.sink(0), list[0].bytes))  // the retry
    #expect(Self.feed(a.sink(1), list[1].bytes))
    let path = try #require(try a.commit(arrived: [true, true]).path)
    #expect(try PackFile.verify(path).corrupt.isEmpty)
  }

  @Test func attackAPackWithAFlippedBlobByteIsRefused() throws {
    let tmp = try TemporaryDirectory()
    let list = Self.packs(2, each: 80)
    let a = try PackAssembly(parts: list.map(\.part), in: tmp.path, describe: Self.describe)
    var bad = list[1].bytes
    bad[bad.count - 5] ^= 0x01
    #expect(Self.feed(a.sink(0), list[0].bytes))
    #expect(Self.feed(a.sink(1), bad))
    #expect {
      try a.commit(arrived: [true, true])
    } throws: { e in
      let e = e as? TsukuError
      return e?.code == .integrity && e?.message.contains("holds a corrupt blob") == true
        && e?.message.contains(list[1].part.id.hex.prefix(16)) == true
    }
    #expect(Self.leftovers(tmp.path).isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).isEmpty)
  }

  @Test func attackAPackHoldingOtherThanTheIndexSaysIsRefused() throws {
    let tmp = try TemporaryDirectory()
    let list = Self.packs(1, each: 20)
    var part = list[0].part
    part.count = 19
    part.size -= 44
    let a = try PackAssembly(parts: [part], in: tmp.path, describe: Self.describe)
    let sink = a.sink(0)
    #expect(!Self.feed(sink, list[0].bytes))
    #expect(sink.refusal?.message == "\(Self.describe(part)) holds 20 blobs; its index entry says 19")
    // Longer than declared: refused as it arrives, not after.
    let b = try PackAssembly(parts: [list[0].part], in: tmp.path, describe: Self.describe)
    #expect(!Self.feed(b.sink(0), list[0].bytes + Data([0])))
    #expect(b.sink(0).refusal?.message.contains("is longer than the \(list[0].part.size) bytes") == true)
    // Shorter: the commit says so.
    let c = try PackAssembly(parts: [list[0].part], in: tmp.path, describe: Self.describe)
    #expect(Self.feed(c.sink(0), list[0].bytes.dropLast(3)))
    #expect(throws: TsukuError.self) { try c.commit(arrived: [true]) }
    // Not a pack at all.
    let d = try PackAssembly(parts: [list[0].part], in: tmp.path, describe: Self.describe)
    #expect(!Self.feed(d.sink(0), Data(repeating: 0x41, count: list[0].part.size)))
    #expect(d.sink(0).refusal?.message.contains("no TSUKUPK1 header") == true)
    a.abandon()
    b.abandon()
    d.abandon()
    #expect(Self.leftovers(tmp.path).isEmpty)
  }

  /// A table out of order is refused by the check, named by the pack it came in.
  @Test func attackAPackTableOutOfOrderIsRefused() throws {
    let tmp = try TemporaryDirectory()
    let list = Self.packs(1, each: 10)
    var bytes = list[0].bytes
    let first = bytes.subdata(in: 12..<56)
    bytes.replaceSubrange(12..<56, with: bytes.subdata(in: 56..<100))
    bytes.replaceSubrange(56..<100, with: first)
    let a = try PackAssembly(parts: [list[0].part], in: tmp.path, describe: Self.describe)
    #expect(Self.feed(a.sink(0), bytes))
    #expect {
      try a.commit(arrived: [true])
    } throws: { e in
      (e as? TsukuError)?.message == "\(Self.describe(list[0].part)) is malformed: table not sorted at entry 1"
    }
    #expect(Self.leftovers(tmp.path).isEmpty)
  }

  @Test func attackADeclaredSizeTooSmallForItsTableIsRefusedBeforeAnyByte() throws {
    let tmp = try TemporaryDirectory()
    let part = PackAssembly.Part(id: SHA256.hash(Data("x".utf8)), size: 100, count: 1000)
    #expect(throws: TsukuError.self) { _ = try PackAssembly(parts: [part], in: tmp.path, describe: Self.describe) }
    #expect(Self.leftovers(tmp.path).isEmpty)
  }

  /// Over HTTP: the body goes to the sink as it arrives (none in the response), a truncated
  /// transfer is retried from its first byte, and a pack whose bytes do not hash to its name
  /// is refused by the store.
  @Test func packsStreamedOverHTTPAreRetriedAndVerified() throws {
    let tmp = try TemporaryDirectory()
    let list = Self.packs(3, each: 120)
    let t = ScriptedTransport(retry: quickRetry)
    let store = HTTPStore(baseURL: "https://cdn.invalid/reg", transport: t)
    func url(_ i: Int) -> String { "https://cdn.invalid/reg/" + list[i].part.id.path }
    t.script(url(0), [.truncated(sent: list[0].bytes.prefix(5000), declared: list[0].bytes.count), .ok(list[0].bytes)])
    t.script(url(1), [.notFound])
    t.script(url(2), [.ok(list[2].bytes)])
    let a = try PackAssembly(parts: list.map(\.part), in: tmp.path, describe: Self.describe)
    let found = try store.fetch(into: list.indices.map { (list[$0].part.id, list[$0].part.size, a.sink($0)) })
    #expect(found == [true, false, true])
    #expect(t.requestCount == 4)
    let path = try #require(try a.commit(arrived: found).path)
    #expect(try Pack(try Data(contentsOf: URL(fileURLWithPath: path))).entries.count == 240)

    var flipped = list[0].bytes
    flipped[flipped.count - 1] ^= 0x01
    t.script(url(0), [.ok(flipped)])
    let b = try PackAssembly(parts: [list[0].part], in: tmp.path, describe: Self.describe)
    #expect {
      _ = try store.fetch(into: [(list[0].part.id, list[0].part.size, b.sink(0))])
    } throws: { e in
      (e as? TsukuError)?.code == .integrity && "\(e)".contains("is corrupt")
    }
    b.abandon()
    #expect(Self.leftovers(tmp.path).isEmpty)
  }
}
