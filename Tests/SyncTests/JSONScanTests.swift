import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The documents' own JSON reader (`JSONScan`, what every command reads root, trust state,
/// index.json, tree, shards and revocation list with) must read exactly what JSONDecoder reads,
/// and leave to it everything else, so that its messages stay the decoder's.
@Suite struct JSONScanTests {
  static let store = DirectoryStore(path: checkout + "/registry-index/store")

  /// Every file of the sample registry's store and of a home synced from it.
  static func sampleDocuments() throws -> [(String, Data)] {
    var out = [(String, Data)]()
    let root = checkout + "/registry-index/store"
    let walker = FileManager.default.enumerator(atPath: root)!
    while let rel = walker.nextObject() as? String {
      var dir: ObjCBool = false
      guard FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &dir), !dir.boolValue else { continue }
      out.append((rel, try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel))))
    }
    return out
  }

  @Test func everyDocumentOfTheSampleRegistryIsScannedAsTheDecoderReadsIt() throws {
    let rootBytes = try #require(try Self.store.readDocument(.root(1), maxSize: Limits.root))
    let rootEnv = try #require(JSONScan.read(rootBytes, Envelope.scan))
    #expect(rootEnv == (try JSONDecoder().decode(Envelope.self, from: rootBytes)))
    let rootPayload = try #require(rootEnv.payloadBytes)
    #expect(JSONScan.read(rootPayload, RootPayload.scan) == (try JSONDecoder().decode(RootPayload.self, from: rootPayload)))

    let indexBytes = try #require(try Self.store.readDocument(.index, maxSize: Limits.indexFile))
    let file = try #require(JSONScan.read(indexBytes, IndexFile.scan))
    #expect(file == (try JSONDecoder().decode(IndexFile.self, from: indexBytes)))
    let indexPayload = try #require(file.index.payloadBytes)
    let payload = try #require(JSONScan.read(indexPayload, IndexPayload.scan))
    #expect(payload == (try JSONDecoder().decode(IndexPayload.self, from: indexPayload)))
    #expect(payload.version == 3)
    let revocationPayload = try #require(file.revocation?.payloadBytes)
    let revocation = try #require(JSONScan.read(revocationPayload, RevocationPayload.scan))
    #expect(revocation == (try JSONDecoder().decode(RevocationPayload.self, from: revocationPayload)))

    let treeBytes = try Self.store.get(payload.tree.sha256, maxSize: payload.tree.size)
    let tree = try #require(JSONScan.read(treeBytes, IndexTree.scan))
    #expect(tree == (try JSONDecoder().decode(IndexTree.self, from: treeBytes)))
    #expect(tree.shards.count > 10)
    var entries = 0
    for s in tree.shards {
      let bytes = try Self.store.get(s.sha256, maxSize: s.size)
      let shard = try #require(JSONScan.read(bytes, IndexShard.scan), "shard \(s.prefix)")
      #expect(shard == (try JSONDecoder().decode(IndexShard.self, from: bytes)))
      entries += shard.entries.count
    }
    #expect(entries == payload.recipes)
    let listBytes = try Self.store.get(revocation.list.sha256, maxSize: revocation.list.size)
    #expect(JSONScan.read(listBytes, RevocationList.scan) == (try JSONDecoder().decode(RevocationList.self, from: listBytes)))

    // Every other file (recipes, golden files, archived indexes): the scan never disagrees.
    let all = try Self.sampleDocuments()
    #expect(all.count > 500)
    for (path, bytes) in all {
      #expect(JSONScanCheck.disagreements(bytes).isEmpty, "\(path)")
    }
  }

  @Test func aSyncedHomesTrustStateAndCacheRecordAreScanned() throws {
    let home = NSTemporaryDirectory() + "jsonscan-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: home) }
    let env = ["TSUKU_HOME": home]
    let bin = tsukuBinary(checkout: checkout)
    let source = "git+file://\(checkout)?dir=registry-index/store"
    #expect(
      try runTsuku(["init", "--root", checkout + "/registry-index/root.json", "--source", source], env: env, binary: bin).status
        == 0)
    #expect(try runTsuku(["update-registry"], env: env, binary: bin).status == 0)
    let state = try Data(contentsOf: URL(fileURLWithPath: home + "/trust/state.json"))
    let scanned = try #require(JSONScan.read(state, TrustState.scan))
    #expect(scanned == (try JSONDecoder().decode(TrustState.self, from: state)))
    #expect(scanned.index_version == 3)
    let meta = try Data(contentsOf: URL(fileURLWithPath: home + "/cache/meta.json"))
    let record = try #require(JSONScan.read(meta, Home.CacheMeta.scan))
    #expect(record == (try JSONDecoder().decode(Home.CacheMeta.self, from: meta)))
    #expect(record.source == source)
  }

  /// Documents with every optional field present (a tree of subtrees and packs, who published,
  /// a log origin, a source commit), which the sample registry does not have.
  @Test func everyFieldOfEveryDocumentIsRead() throws {
    func same<T: Codable & Equatable & JSONScannable>(_ value: T, _ line: Int = #line) throws {
      for bytes in [JSON.encode(value), JSON.encode(value, pretty: true)] {
        let scanned = try #require(JSONScan.read(bytes, T.scan), "line \(line)")
        #expect(scanned == value, "line \(line)")
        #expect(scanned == (try JSONDecoder().decode(T.self, from: bytes)), "line \(line)")
      }
    }
    let id = SHA256.hash("x")
    let by = PublishedBy(identity: "oidc https://issuer sub repo:tsuku/recipes", tool: "tsuku 0.1.0")
    try same(
      IndexTree(
        format: 1, type: "index-tree", prefix_length: 3, shards: [],
        subtrees: [IndexTree.Subtree(prefix: "ab", sha256: id, size: 10, shards: 3)],
        packs: [IndexTree.PackRef(sha256: id, size: 99, count: 4)]))
    try same(
      IndexTree(
        format: 1, type: "index-tree", prefix_length: 1,
        shards: [IndexTree.Shard(prefix: "a", sha256: id, size: 5, entries: 2)], subtrees: nil, packs: nil))
    try same(
      IndexSubtree(
        format: 1, type: "index-subtree", prefix: "ab", shards: [IndexTree.Shard(prefix: "abc", sha256: id, size: 5, entries: 2)]))
    try same(by)
    try same(PublishedBy(identity: nil, tool: "tsuku 0.1.0"))
    try same(
      IndexPayload(
        format: 1, type: "index", version: 9, expires: "2030-01-01T00:00:00Z", published: "2026-12-04T00:00:00Z",
        tree: BlobRef(sha256: id, size: 7), recipes: 3, golden: 4, revocation_version: 2, published_by: by))
    try same(RevocationPayload(version: 4, expires: Date(timeIntervalSince1970: 2e9), list: BlobRef(sha256: id, size: 1), revokedKeys: ["k1", "k2"], publishedBy: by))
    let key = PublicKey(ed25519: [UInt8](repeating: 7, count: 32))
    var roles = [Role: RoleKeys]()
    for r in Role.allCases { roles[r] = RoleKeys(keyids: [key.keyID], threshold: 1) }
    try same(RootPayload(version: 2, expires: Date(timeIntervalSince1970: 2e9), keys: [key], roles: roles, logOrigin: "tsuku.example/log"))
    try same(
      RevocationList(
        format: 1, type: "revocation-list", hashes: [.init(sha256: id, reason: "r", revokedAt: Date(), by: "k")],
        keys: [.init(keyid: "k2", reason: "leaked", revokedAt: Date(), by: "k")]))
    var entry = ShardScanTests.entry("alpha", golden: 2)
    entry.source_commit = String(id.hex.prefix(40))
    try same(IndexShard(format: 1, type: "index-shard", prefix: "a", entries: [entry, ShardScanTests.entry("beta", golden: 0)]))
    try same(
      Home.CacheMeta(
        synced_at: "2026-12-04T00:00:00Z", confirmed_at: "2026-12-04T01:00:00Z", source: "s3://b/p?endpoint=http://h:1",
        index_version: 5, etag: "\"abc\"", recipes: 3, golden: 4, index_sha256: id.hex))
    var state = TrustState()
    (state.index_payload_sha256, state.revocation_payload_sha256, state.root_version) = (id, id, 2)
    try same(state)
  }

  @Test func escapesNullsAbsentOptionalsAndUnknownFieldsAreReadAlike() throws {
    var state = TrustState()
    state.index_version = 7
    state.log_size = UInt64(Int64.max) + 5
    state.log_root = "a/b+c=="
    let stateJSON = String(decoding: JSON.encode(state), as: UTF8.self)
    for variant in [
      stateJSON,
      stateJSON.replacingOccurrences(of: #""log_root":"a/b+c==""#, with: #""log_root":"a\/b\u002bc==""#),
      stateJSON.replacingOccurrences(of: "{", with: #"{"root_version":null,"future":[{"x":[1,2.5e-3,true,null]}],"#),
      #"{"format":1,"index_version":0,"revocation_version":0}"#,
    ] {
      let bytes = Data(variant.utf8)
      let scanned = try #require(JSONScan.read(bytes, TrustState.scan), "\(variant)")
      #expect(scanned == (try JSONDecoder().decode(TrustState.self, from: bytes)), "\(variant)")
    }
    // Text with every kind of escape, a surrogate pair and raw UTF-8.
    let hash = RevocationList.Hash(
      sha256: SHA256.hash("x"), reason: "quote \" backslash \\ tab \t newline \n bell \u{7} é \u{1F600}", revokedAt: Date(),
      by: "k")
    let list = RevocationList(format: Format.current, type: "revocation-list", hashes: [hash], keys: [])
    let encoded = String(decoding: JSON.encode(list), as: UTF8.self)
    let escapedPair = encoded.replacingOccurrences(of: "\u{1F600}", with: #"\ud83d\ude00"#)
    #expect(escapedPair != encoded)
    for variant in [encoded, escapedPair] {
      let bytes = Data(variant.utf8)
      let scanned = try #require(JSONScan.read(bytes, RevocationList.scan), "\(variant)")
      #expect(scanned == list)
      #expect(scanned == (try JSONDecoder().decode(RevocationList.self, from: bytes)))
    }
  }

  @Test func whatTheScanDoesNotTakeIsLeftToTheDecoder() throws {
    let bytes = try #require(try Self.store.readDocument(.index, maxSize: Limits.indexFile))
    let file = try IndexFile.parse(bytes, what: "index.json")
    let payload = String(decoding: try #require(file.index.payloadBytes), as: UTF8.self)
    let tree = file.index.payloadBytes.flatMap { JSONScan.read($0, IndexPayload.scan) }!.tree.sha256.hex
    // Valid JSON the scan leaves to the decoder, which reads it.
    for variant in [
      payload.replacingOccurrences(of: #""version":"#, with: #""version":1,"version":"#),
      payload.replacingOccurrences(of: #""type":"index""#, with: #""typ\u0065":"index""#),
    ] {
      let data = Data(variant.utf8)
      #expect(JSONScan.read(data, IndexPayload.scan) == nil, "\(variant)")
      #expect(JSONScanCheck.disagreements(data).isEmpty)
      #expect(throws: Never.self) { _ = try JSON.decode(IndexPayload.self, data, what: "index section") }
    }
    // Not valid: no scan, and the decoder's one-line message naming the document.
    for (variant, message) in [
      (payload + "x", "index section is not valid"),
      (payload.replacingOccurrences(of: tree, with: tree.uppercased()), "invalid sha256"),
      (String(payload.dropLast()), "index section is not valid"),
      (payload.replacingOccurrences(of: #""recipes":"#, with: #""recipes":1.5,"x":"#), "index section is not valid"),
      (payload.replacingOccurrences(of: #""golden":"#, with: #""gold":"#), "missing 'golden'"),
      (payload.replacingOccurrences(of: #""type":"index""#, with: #""type":"ind\ud800ex""#), "index section is not valid"),
      (payload.replacingOccurrences(of: #""type":"index""#, with: #""type":"ind\udc00ex""#), "index section is not valid"),
      (payload.replacingOccurrences(of: #""type":"index""#, with: #""type":"ind\ud800\u0041ex""#), "index section is not valid"),
    ] {
      let data = Data(variant.utf8)
      #expect(JSONScan.read(data, IndexPayload.scan) == nil, "\(variant)")
      let error = #expect(throws: TsukuError.self) { try JSON.decode(IndexPayload.self, data, what: "index section") }
      #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
    // An unknown signature kind is the decoder's "unexpected value", never a Swift type's name.
    let root = String(decoding: try #require(try Self.store.readDocument(.root(1), maxSize: Limits.root)), as: UTF8.self)
    let wrongType = Data(root.replacingOccurrences(of: #""type" : "root""#, with: #""type" : "rooot""#).utf8)
    #expect(JSONScan.read(wrongType, Envelope.scan) == nil)
    let error = #expect(throws: TsukuError.self) { try JSON.decode(Envelope.self, wrongType, what: "root") }
    #expect(error?.message == "root is not valid: type: unexpected value 'rooot'")
  }

  /// Thousands of damaged documents (bytes changed, removed, repeated): whatever the scan takes,
  /// the decoder reads the same.
  @Test func damagedDocumentsAreNeverReadOtherwiseThanByTheDecoder() throws {
    let seeds = try FileManager.default.contentsOfDirectory(atPath: checkout + "/Fuzz/seeds/scan").sorted().map {
      try Data(contentsOf: URL(fileURLWithPath: checkout + "/Fuzz/seeds/scan/" + $0))
    }
    #expect(seeds.count >= 9)
    for s in seeds { #expect(JSONScanCheck.scanned(s) >= 1) }
    var rng = SplitMix(seed: 0x7535_6b75)
    let alphabet = Array(#"{}[]:,"\-.0123456789eEnulltrueafsbu /+="#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xFF]
    var tried = 0, scanned = 0
    for seed in seeds {
      for _ in 0..<400 {
        var d = [UInt8](seed)
        for _ in 0...(rng.next() % 3) {
          guard !d.isEmpty else { break }
          let at = Int(rng.next() % UInt64(d.count))
          switch rng.next() % 4 {
          case 0: d[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
          case 1: d.remove(at: at)
          case 2: d.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
          default:
            let end = min(d.count, at + Int(rng.next() % 24))
            d.insert(contentsOf: d[at..<end], at: at)
          }
        }
        let data = Data(d)
        tried += 1
        if JSONScanCheck.scanned(data) > 0 { scanned += 1 }
        let differ = JSONScanCheck.disagreements(data)
        #expect(differ.isEmpty, "\(differ): \(String(decoding: data, as: UTF8.self).prefix(300))")
      }
    }
    // Many damaged documents still read (a changed digit, a changed letter of a text), and many
    // do not (the damage reaches the structure): both sides of the comparison are exercised.
    #expect(scanned > tried / 10)
    #expect(scanned < tried * 9 / 10)
  }
}

/// The audit log's lines, written by hand, are what JSONEncoder writes for the same event.
@Suite struct JSONLineTests {
  @Test func auditLinesAreTheEncodersBytes() throws {
    var texts = ["", "plain", "quote \" backslash \\ slash / é \u{1F600}", "\u{7F} \u{2028} \u{FEFF}"]
    texts += (0..<32).map { "control \(String(UnicodeScalar(UInt8($0)))) end" }
    var events = [AuditEvent]()
    for (n, t) in texts.enumerated() {
      var e = AuditEvent(
        n % 2 == 0 ? "fetch" : t, time: Date(timeIntervalSince1970: Double(n) * 1_000_000), name: t,
        sha256: SHA256.hash(t), source: n % 3 == 0 ? nil : "https://example.org/\(t)", indexVersion: n % 4 == 0 ? nil : n,
        sourceCommit: n % 5 == 0 ? t : nil, ageSeconds: n % 2 == 0 ? -n : nil, detail: t, kind: n % 2 == 0 ? .recipe : nil)
      if n % 3 == 1 { e.count = n * 1000 }
      if n % 4 == 1 { e.blobs = [t, "x", ""] }
      if n % 4 == 3 { e.blobs = [] }
      if n % 5 == 2 { e.blobs_file = "receive-\(t).txt" }
      events.append(e)
    }
    events.append(AuditEvent("revoked", time: Date()))
    for e in events {
      let line = e.jsonLine
      #expect(line == JSON.encode(e) + Data("\n".utf8), "\(String(decoding: line, as: UTF8.self))")
      #expect(try JSONDecoder().decode(AuditEvent.self, from: line) == e)
    }
  }
}

/// A small deterministic generator, so a failure can be replayed.
struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
