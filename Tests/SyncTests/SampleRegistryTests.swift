import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The committed sample registry in `registry-index/`.
@Suite struct SampleRegistryTests {
  let store = DirectoryStore(path: checkout + "/registry-index/store")

  @Test func sampleRootIsTheOneBuiltIntoTheBinary() throws {
    let file = try Data(contentsOf: URL(fileURLWithPath: checkout + "/registry-index/root.json"))
    #expect(try DefaultRegistry.root().bytes == file)
    #expect(try store.readDocument(.root(1), maxSize: Limits.root) == file)
  }

  @Test func sampleRegistryHasAtLeast60DaysBeforeItExpires() throws {
    let root = try Publisher.currentRoot(of: store)
    let index = try #require(try Publisher.currentIndex(of: store, root: root))
    let limit = Date().addingTimeInterval(60 * 86400)
    let fix = "re-sign it with tools/resign-sample"
    #expect(try #require(index.index.expiryDate) > limit, "index expires \(index.index.expires): \(fix)")
    #expect(try #require(root.payload.expiryDate) > limit, "root expires \(root.payload.expires): \(fix)")
    if let r = index.revocation { #expect(try #require(r.expiryDate) > limit, "revocation list expires \(r.expires): \(fix)") }
  }

  @Test func sampleRegistryVerifiesAndHoldsEverythingItsIndexNames() throws {
    let tmp = try TemporaryDirectory()
    let client = Client(home: Home(path: tmp.path), sources: ["file://" + store.root], now: Date())
    let r = try client.updateRegistry()
    #expect(r.recipes >= 119)
    let critical = try client.entries().filter { $0.category == .critical }
    #expect(critical.count == 19)
  }
}
