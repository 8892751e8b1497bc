import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A multi-store command never moves a store back and never gives one version number two
/// contents, even when earlier commands were run against one store alone and left the stores
/// apart in both directions (one ahead on the index, another on the revocation list).
@Suite struct RollbackGuardTests {
  func revoke(_ f: Fleet, _ hash: String, _ targets: [String]) throws -> CommandResult {
    try f.run(["registry", "revoke", hash, "--reason", "compromised upstream", "--key", f.w.k("revocation")] + f.to(targets))
  }

  /// A publish without the revocation key, to `targets` only.
  func publishWithoutRevocationKey(_ f: Fleet, _ targets: [String], recipes: String) throws -> CommandResult {
    try f.run(
      ["registry", "publish", "--recipes", recipes, "--critical", Fleet.sample + "/embedded", "--golden",
       Fleet.sample + "/golden", "--key", f.w.k("index"), "--allow-removals"] + f.to(targets))
  }

  func versions(_ f: Fleet, _ targets: [String]) throws -> [[Int?]] {
    let r = try f.status(targets, json: true)
    let json = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.stderr)")
    return (json["targets"] as? [[String: Any]] ?? []).map { [$0["index_version"] as? Int, $0["revocation_version"] as? Int] }
  }

  @Test func aRevocationOnOneStoreAloneIsNeverRolledBackByARevokeOverAll() throws {
    let f = try Fleet.make("rbk1")
    let two = [f.directory, f.git]
    try f.publish(two)  // index 1, revocation list 1 on both
    // A responder revokes on the git store alone (list 2 there); a maintainer publishes to the
    // directory alone (index 2 there, still list 1).
    var r = try revoke(f, f.fzfHash, [f.git])
    #expect(r.status == 0, "\(r.stderr)")
    r = try publishWithoutRevocationKey(f, [f.directory], recipes: try f.changedRecipes("ahead"))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try versions(f, two) == [[2, 1], [1, 2]])

    // The same revocation over both: no single index.json holds both newest sections, so the
    // list is signed again as version 3 over index version 2, and written to both.
    r = try revoke(f, f.fzfHash, two)
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("revocation list version 3"), "\(r.out)")
    #expect(try versions(f, two) == [[2, 3], [2, 3]])
    #expect(try f.status(two).status == 0)
    // The revoked hash is in the list both serve.
    for url in two {
      let store = try StoreURL.openReader(url, environment: f.admin)
      let file = try IndexFile.parse(try #require(try store.readDocument(.index, maxSize: 1 << 24)), what: "index.json")
      let payload = try RevocationPayload.parse(try #require(file.revocation?.payloadBytes), what: "revocation")
      let list = try RevocationList.parse(try store.get(payload.list.sha256, maxSize: payload.list.size), what: "list")
      #expect(list.hashes.map(\.sha256.hex) == [f.fzfHash], "\(url)")
    }
  }

  @Test func twoRevocationListsWithOneVersionAreRefusedNotOverwritten() throws {
    let f = try Fleet.make("rbk2")
    let two = [f.directory, f.git]
    try f.publish(two)
    // Two responders, one store each, each revoking a blob (none the sample publishes): two
    // different lists, both version 2.
    let (a, b) = (String(repeating: "a", count: 64), String(repeating: "b", count: 64))
    #expect(try revoke(f, a, [f.directory]).status == 0)
    #expect(try revoke(f, b, [f.git]).status == 0)
    let before = try f.indexFiles()
    let recipes = Fleet.sample + "/recipes"

    // A publish over both would carry one list and overwrite the other: refused, nothing written.
    var r = try publishWithoutRevocationKey(f, two, recipes: recipes)
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
    #expect(r.stderr.contains("holds another revocation list version 2"), "\(r.stderr)")
    #expect(try f.indexFiles() == before)

    // A revocation over both (here of a hash one list already holds) merges the two lists into
    // one, version 3, with both hashes.
    r = try revoke(f, b, two)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try versions(f, two) == [[1, 3], [1, 3]])
    for url in two {
      let store = try StoreURL.openReader(url, environment: f.admin)
      let file = try IndexFile.parse(try #require(try store.readDocument(.index, maxSize: 1 << 24)), what: "index.json")
      let payload = try RevocationPayload.parse(try #require(file.revocation?.payloadBytes), what: "revocation")
      let list = try RevocationList.parse(try store.get(payload.list.sha256, maxSize: payload.list.size), what: "list")
      #expect(Set(list.hashes.map(\.sha256.hex)) == [a, b], "\(url)")
    }
    r = try publishWithoutRevocationKey(f, two, recipes: recipes)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try f.status(two).status == 0)
  }
}
