import Foundation
import TestSupport
import Testing

@testable import Store

/// Store sets the reason of a refusal where it throws it, so callers (metrics, reports) read
/// the reason and never the message text.
@Suite struct ReasonTests {
  private func reason(_ body: () throws -> Void) -> TsukuError.Reason? {
    do { try body() } catch let e as TsukuError { return e.reason } catch {}
    return nil
  }

  @Test func corruptAndOversizedBlobsSayWhy() throws {
    let store = MemoryStore()
    let data = Data("blob".utf8)
    let id = SHA256.hash(data)
    try store.apply(StoreChange(objects: [data]))
    #expect(reason { _ = try store.get(id, maxSize: 2) } == .tooLarge)
    store.tamper(id, with: Data("bl0b".utf8))
    #expect(reason { _ = try store.get(id, maxSize: 100) } == .hashMismatch)
  }

  @Test func packRefusalsSayWhy() throws {
    #expect(reason { _ = try Pack(Data("not a pack at all".utf8)) } == .malformed)
    var bytes = Pack.build([Data("one".utf8)])
    bytes[bytes.count - 1] ^= 1
    let pack = try Pack(bytes)
    #expect(reason { _ = try pack.blob(pack.entries[0]) } == .hashMismatch)
  }

  @Test func packFileRefusalsSayWhy() throws {
    let dir = try TemporaryDirectory()
    let path = dir.file("bad.pack")
    try Data("TSUKUPK1".utf8).write(to: URL(fileURLWithPath: path))
    #expect(reason { _ = try PackFile.table(path) } == .malformed)
  }
}
