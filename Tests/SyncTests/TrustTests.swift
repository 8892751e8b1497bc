import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// Signatures, thresholds, document types, roots.
@Suite struct TrustTests {
  let f: RegistryFixture
  init() throws { f = try RegistryFixture() }

  func indexFile(version: Int = 1, signers: [SigningKey]? = nil, expires: Date? = nil, format: Int = 1) throws -> Data {
    let payload = IndexPayload(
      format: format, type: "index", version: version, expires: Timestamp.format(expires ?? f.now.addingTimeInterval(86400)),
      published: Timestamp.format(f.now), tree: BlobRef(of: Data("{}".utf8)), recipes: 0, golden: 0)
    let env = try Envelope.sign(type: .index, payload: RootDocuments.encode(payload), keys: signers ?? [f.indexKey])
    return IndexFile(rootVersion: 1, index: env, revocation: nil).bytes
  }

  func verify(_ bytes: Data, state: TrustState = TrustState(), now: Date? = nil) throws -> VerifiedIndex {
    try IndexVerifier.verify(bytes, root: f.root, state: state, now: now ?? f.now, source: "test")
  }

  @Test func validIndexVerifies() throws {
    #expect(try verify(indexFile(version: 3)).index.version == 3)
  }

  @Test func indexSignedByUnknownKeyIsRefused() throws {
    let stranger = try SigningKey.generate()
    let e = #expect(throws: TsukuError.self) { try verify(indexFile(signers: [stranger])) }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("0 valid signatures of 1 required") == true)
  }

  @Test func unsignedIndexIsRefused() throws {
    let e = #expect(throws: TsukuError.self) { try verify(indexFile(signers: [])) }
    #expect(e?.message.contains("unsigned") == true)
  }

  @Test func indexSignedByRootKeyInsteadOfIndexKeyIsRefused() throws {
    #expect(throws: TsukuError.self) { try verify(indexFile(signers: [f.rootKey])) }
  }

  @Test func lowerVersionThanTrustedIsRefused() throws {
    var state = TrustState()
    state.index_version = 5
    let e = #expect(throws: TsukuError.self) { try verify(indexFile(version: 4), state: state) }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("rollback refused") == true)
  }

  @Test func sameVersionWithOtherBytesIsRefused() throws {
    let first = try verify(indexFile(version: 2))
    let state = first.advancing(TrustState())
    // Same version, signed again later: other bytes.
    let other = try indexFile(version: 2, expires: f.now.addingTimeInterval(7200))
    let e = #expect(throws: TsukuError.self) { try verify(other, state: state) }
    #expect(e?.message.contains("other content") == true)
    // The very same bytes are fine.
    #expect(try verify(first.bytes, state: state).index.version == 2)
  }

  @Test func expiredIndexIsRefused() throws {
    let bytes = try indexFile(expires: f.now.addingTimeInterval(60))
    let e = #expect(throws: TsukuError.self) { try verify(bytes, now: f.now.addingTimeInterval(120)) }
    #expect(e?.code == .integrity)
    #expect(e?.message.contains("expired") == true)
  }

  @Test func unknownFormatVersionIsRefusedWithUpgradeMessage() throws {
    var text = String(decoding: try indexFile(), as: UTF8.self)
    text = text.replacingOccurrences(of: "\"format\" : 1", with: "\"format\" : 2")
    let e = #expect(throws: TsukuError.self) { try verify(Data(text.utf8)) }
    #expect(e?.message.contains("upgrade tsuku") == true)
    // Also inside a signed payload.
    let e2 = #expect(throws: TsukuError.self) { try verify(indexFile(format: 7)) }
    #expect(e2?.message.contains("format version 7") == true)
  }

  @Test func documentOfAnotherTypeCannotStandIn() throws {
    // A root envelope put where the index section belongs.
    let rootEnv = try JSONDecoder().decode(Envelope.self, from: f.root.bytes)
    let file = IndexFile(rootVersion: 1, index: rootEnv, revocation: nil).bytes
    let e = #expect(throws: TsukuError.self) { try verify(file) }
    #expect(e?.message.contains("'root' document where a 'index' document belongs") == true)
    // An index payload relabelled as a revocation: the signature covers the type, so it fails.
    var env = try JSONDecoder().decode(IndexFile.self, from: indexFile()).index
    env.type = .revocation
    let swapped = IndexFile(rootVersion: 1, index: try JSONDecoder().decode(IndexFile.self, from: indexFile()).index, revocation: env).bytes
    #expect(throws: TsukuError.self) { try verify(swapped) }
  }

  @Test func sameKeySigningTwiceCountsOnce() throws {
    let k2 = try SigningKey.generate()
    let root = try RegistryFixture.makeRoot(
      version: 1, signers: [f.rootKey], rootKeys: [f.rootKey], indexKeys: [f.indexKey, k2], revocationKeys: [f.revocationKey],
      expires: f.now.addingTimeInterval(86400), thresholds: (1, 2, 1))
    let payload = Data("{}".utf8)
    var env = try Envelope.sign(type: .index, payload: payload, keys: [f.indexKey])
    env.signatures.append(env.signatures[0])
    #expect(env.validSigners(role: .index, root: root.payload).count == 1)
    #expect(throws: TsukuError.self) { try env.verify(as: .index, role: .index, root: root.payload, what: "t") }
    try env.addSignatures([k2])
    #expect(try env.verify(as: .index, role: .index, root: root.payload, what: "t") == payload)
  }

  @Test func oneBadSignatureBesideEnoughGoodOnesIsFine() throws {
    var env = try Envelope.sign(type: .index, payload: Data("x".utf8), keys: [f.indexKey])
    env.signatures.insert(Signature(keyid: f.indexKey.keyID, sig: Data(repeating: 1, count: 64).base64EncodedString()), at: 0)
    #expect(env.validSigners(role: .index, root: f.root.payload) == [f.indexKey.keyID])
  }

  @Test func unknownKeyTypeNeverCounts() throws {
    var payload = f.root.payload
    payload.keys[f.indexKey.keyID]?.type = "rsa"
    let env = try Envelope.sign(type: .index, payload: Data("x".utf8), keys: [f.indexKey])
    #expect(env.validSigners(role: .index, root: payload).isEmpty)
  }

  @Test func rootRotationNeedsOldAndNewThresholds() throws {
    let newRoot = try SigningKey.generate()
    let exp = f.now.addingTimeInterval(86400)
    let both = try RegistryFixture.makeRoot(
      version: 2, signers: [f.rootKey, newRoot], rootKeys: [newRoot], indexKeys: [f.indexKey], revocationKeys: [f.revocationKey], expires: exp)
    #expect(try f.root.next(both.bytes, what: "r2").version == 2)
    let onlyNew = try RegistryFixture.makeRoot(
      version: 2, signers: [newRoot], rootKeys: [newRoot], indexKeys: [f.indexKey], revocationKeys: [f.revocationKey], expires: exp)
    let e = #expect(throws: TsukuError.self) { try f.root.next(onlyNew.bytes, what: "r2") }
    #expect(e?.message.contains("old keys") == true)
    let skip = try RegistryFixture.makeRoot(
      version: 3, signers: [f.rootKey, newRoot], rootKeys: [newRoot], indexKeys: [f.indexKey], revocationKeys: [f.revocationKey], expires: exp)
    #expect(throws: TsukuError.self) { try f.root.next(skip.bytes, what: "r3") }
  }

  @Test func expiredRootIsRefused() throws {
    let g = try RegistryFixture(rootExpiresDays: 1)
    let later = g.now.addingTimeInterval(2 * 86400)
    let e = #expect(throws: TsukuError.self) { try g.root.checkNotExpired(now: later) }
    #expect(e?.message.contains("root version 1 expired") == true)
  }

  @Test func keyFilesArePrivateAndRoundTrip() throws {
    let path = f.dir.file("k")
    try KeyFile.write(f.indexKey, to: path)
    var st = stat()
    stat(path, &st)
    #expect(st.st_mode & 0o777 == 0o600)
    #expect(try KeyFile.readPrivate(path).keyID == f.indexKey.keyID)
    #expect(try KeyFile.readPublic(path + ".pub") == f.indexKey.publicKey)
    chmod(path, 0o644)
    #expect(throws: TsukuError.self) { try KeyFile.readPrivate(path) }
    #expect(throws: TsukuError.self) { try KeyFile.write(f.indexKey, to: path) }
  }
}
