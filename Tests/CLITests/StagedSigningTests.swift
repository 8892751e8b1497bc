import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `registry sign` on a staged document: which keys it accepts and what it reports.
@Suite struct StagedSigningTests {
  /// Keys root, index, index2, revocation; a registry whose index role needs 2 of
  /// {index, index2}; the sample staged for signing with the `index` key. Returns the key ids.
  func stagedWorld(_ w: CLIWorld) throws -> [String: String] {
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    var ids = [String: String]()
    for role in ["root", "index", "index2", "revocation"] {
      let r = try w.run("registry", "keygen", "--out", w.k(role))
      #expect(r.status == 0, "\(r.stderr)")
      ids[role] = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    var r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      w.k("index2") + ".pub", "--index-threshold", "2", "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run(
      "registry", "publish", "--recipes", checkout + "/registry-index/source/recipes", "--critical",
      checkout + "/registry-index/source/embedded", "--golden", checkout + "/registry-index/source/golden", "--key", w.k("index"),
      "--to", w.store, "--stage", w.dir.file("staged.json"))
    #expect(r.status == 0, "\(r.stderr)")
    return ids
  }

  @Test func signRefusesAKeyWithNoRoleForTheStagedSection() throws {
    let w = try CLIWorld()
    let ids = try stagedWorld(w)
    let before = try Data(contentsOf: URL(fileURLWithPath: w.dir.file("staged.json")))
    var r = try w.run("registry", "sign", "--staged", w.dir.file("staged.json"), "--key", w.k("root"))
    #expect(r.status == 64, "\(r.out) \(r.stderr)")
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(r.stderr)")
    #expect(r.stderr.contains("key \(ids["root"]!) holds no role that signs this staged index"))
    #expect(r.stderr.contains("the index section is signed by the 'index' keys of root version 1"))
    #expect(r.stderr.contains(ids["index2"]!))
    // Nothing was signed: the file is unchanged, and the staged index still cannot be published.
    #expect(try Data(contentsOf: URL(fileURLWithPath: w.dir.file("staged.json"))) == before)
    r = try w.run("registry", "publish", "--staged", w.dir.file("staged.json"), "--to", w.store)
    #expect(r.status == 4, "\(r.stderr)")
    // A right key given with a wrong one: the whole call is refused.
    r = try w.run("registry", "sign", "--staged", w.dir.file("staged.json"), "--key", w.k("index2"), w.k("revocation"))
    #expect(r.status == 64, "\(r.stderr)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: w.dir.file("staged.json"))) == before)
  }

  @Test func signReportsEachSectionsSignaturesAgainstItsThreshold() throws {
    let w = try CLIWorld()
    _ = try stagedWorld(w)
    // The key that staged it signs again: still one.
    var r = try w.run("registry", "sign", "--staged", w.dir.file("staged.json"), "--key", w.k("index"))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("index: 1 of 2 required"), "\(r.out)")
    r = try w.run("registry", "sign", "--staged", w.dir.file("staged.json"), "--key", w.k("index2"))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("index: 2 of 2 required"), "\(r.out)")
    r = try w.run("registry", "publish", "--staged", w.dir.file("staged.json"), "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
  }

  /// The emergency case staged: revoking the very key that signed the current index section
  /// (which then no longer verifies as a client checks it) is published from a staged file as
  /// it is directly, by checking the new revocation section only.
  @Test func aStagedRevocationOfTheIndexKeyCanBePublished() throws {
    let w = try CLIWorld()
    try w.setUp()
    let pub = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.k("index") + ".pub"))) as? [String: Any])
    let keyid = try #require(pub["keyid"] as? String)
    let staged = w.dir.file("revoke.json")
    var r = try w.run(
      "registry", "revoke", "--key-id", keyid, "--reason", "index key leaked", "--key", w.k("revocation"), "--to", w.store,
      "--stage", staged)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("registry", "publish", "--staged", staged, "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    let file = try IndexFile.parse(try Data(contentsOf: URL(fileURLWithPath: w.dir.file("store/index.json"))), what: "index.json")
    let payload = try RevocationPayload.parse(try #require(file.revocation?.payloadBytes), what: "revocation")
    #expect(payload.revoked_keys == [keyid])
  }
}
