import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The trusted set alone: bytes in, verdicts out, no store or cache involved.
@Suite struct TrustedMetadataTests {
  @Test("a rotation that replaced the index keys resets the index versions, not the revocation ones")
  func fastForwardResetsOnlyTheRotatedRole() throws {
    let f = try RegistryFixture()
    var state = TrustState()
    (state.index_version, state.index_payload_sha256) = (1000, SHA256.hash(Data("inflated".utf8)))
    (state.revocation_version, state.revocation_payload_sha256) = (7, SHA256.hash(Data("kept".utf8)))
    let root2 = try RegistryFixture.makeRoot(
      version: 2, signers: [f.rootKey], rootKeys: [f.rootKey], indexKeys: [try SigningKey.generate()],
      revocationKeys: [f.revocationKey], expires: f.now.addingTimeInterval(86400))
    var t = TrustedMetadata(root: f.root, state: state, now: f.now)
    try t.updateRoot(to: 2, source: "s") { $0 == 2 ? root2.bytes : nil }
    #expect(t.root == root2)
    #expect(t.state.index_version == 0 && t.state.index_payload_sha256 == nil)
    #expect(t.state.revocation_version == 7 && t.state.revocation_payload_sha256 == state.revocation_payload_sha256)
    #expect(t.startRoot == f.root && t.startState == state)
  }

  @Test("a root walk that changed no role's keys keeps every trusted version")
  func rotationOfNothingKeepsVersions() throws {
    let f = try RegistryFixture()
    var state = TrustState()
    state.index_version = 5
    let root2 = try RegistryFixture.makeRoot(
      version: 2, signers: [f.rootKey], rootKeys: [f.rootKey], indexKeys: [f.indexKey],
      revocationKeys: [f.revocationKey],
      expires: f.now.addingTimeInterval(86400))
    var t = TrustedMetadata(root: f.root, state: state, now: f.now)
    try t.updateRoot(to: 2, source: "s") { $0 == 2 ? root2.bytes : nil }
    #expect(t.state == state)
  }

  @Test("an older index is refused as a rollback and nothing is accepted")
  func olderIndexIsARollback() throws {
    let w = try World()
    let v1 = try #require(try w.store.readDocument(.index, maxSize: Limits.indexFile))
    try w.f.publish(w.input, to: w.store, at: w.later(10))
    let v2 = try #require(try w.store.readDocument(.index, maxSize: Limits.indexFile))
    var first = TrustedMetadata(root: w.f.root, state: TrustState(), now: w.later(10))
    #expect(try first.updateIndex(v2, source: "s").index.version == 2)
    var next = TrustedMetadata(root: w.f.root, state: first.advancedState, now: w.later(20))
    let e = #expect(throws: TsukuError.self) { try next.updateIndex(v1, source: "s") }
    #expect(e?.reason == .rollback)
    #expect(next.index == nil)
    // A stale cache behind the trusted version is still served, without the version checks.
    #expect(next.isBehind(1))
    #expect(try next.updateIndex(stale: v1, confirmed: w.later(5), behind: true, source: "s").index.version == 1)
  }

  @Test("the revocation map is the accepted list's revoked blobs")
  func revocationMapComesFromTheList() throws {
    let f = try RegistryFixture()
    let id = SHA256.hash(Data("backdoored".utf8))
    let list = RevocationList(
      format: Format.current, type: "revocation-list",
      hashes: [.init(sha256: id, reason: "backdoored", revokedAt: f.now, by: "k")],
      keys: [])
    var t = TrustedMetadata(root: f.root, state: TrustState(), now: f.now)
    try t.updateRevocationList(JSON.encode(list), what: "revocation list")
    #expect(t.revoked == [id: "backdoored"])
    #expect(throws: TsukuError.self) { try t.updateRevocationList(Data("{}".utf8), what: "revocation list") }
  }
}
