import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Every writing command with repeated `--to` over a directory, a git repository and a
/// SeaweedFS bucket: one commit computed once and written to all three, a lagging store
/// brought forward, a diverged one refused.
@Suite(.serialized) struct MultiStoreTests {
  @Test func everyWritingCommandLeavesTheThreeStoresEqual() throws {
    let f = try Fleet.make("every")
    try f.publish(f.all)
    try f.expectEqual("publish")

    var r = try f.run(["registry", "resign", "--key", f.w.k("index"), "--revocation-key", f.w.k("revocation")] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("published index version 2"), "\(r.out)")
    try f.expectEqual("resign")

    r = try f.run(["registry", "revoke", f.fzfHash, "--reason", "bad release", "--key", f.w.k("revocation")] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    try f.expectEqual("revoke")

    r = try f.run(
      ["registry", "rotate-root", "--index-key", f.w.k("index2") + ".pub", "--sign", f.w.k("root")] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("wrote root version 2"), "\(r.out)")
    try f.expectEqual("rotate-root")

    r = try f.run(["registry", "resign", "--key", f.w.k("index2")] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    try f.expectEqual("resign with the new index key")
    let status = try f.status(json: true)
    let j = try #require(try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])
    let targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["root_version"] as? Int } == [2, 2, 2])
    #expect(targets.map { $0["index_version"] as? Int } == [3, 3, 3])

    // Retention over the three, each reported.
    r = try f.run(["registry", "gc", "--dry-run", "--keep-index-versions", "1"] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    for t in f.all { #expect(r.out.contains("\(t): dry run: kept index versions 3"), "\(r.out)") }
    r = try f.run(["registry", "gc", "--dry-run", "--json"] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    #expect((try JSONSerialization.jsonObject(with: r.stdout) as? [Any])?.count == 3)
  }

  /// The reported bug: `revoke --to A --to B --to C` exited 0 and wrote only C, leaving two
  /// different revocation lists with one version number.
  @Test func revokeWithThreeTargetsWritesTheSameListToAll() throws {
    let f = try Fleet.make("revoke", setup: .copyRoot)
    try f.publish(f.all)
    let r = try f.run(["registry", "revoke", f.fzfHash, "--reason", "bad release", "--key", f.w.k("revocation")] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("published revocation list version 2"), "\(r.out)")
    let files = try f.indexFiles()
    #expect(files.allSatisfy { $0 != nil && $0 == files[0] })
    let s = try f.status(json: true)
    #expect(s.status == 0, "\(s.out)")
    let j = try #require(try JSONSerialization.jsonObject(with: s.stdout) as? [String: Any])
    let targets = try #require(j["targets"] as? [[String: Any]])
    #expect(targets.map { $0["revocation_version"] as? Int } == [2, 2, 2])

    // Again, with every store current: still the usage error.
    let again = try f.run(["registry", "revoke", f.fzfHash, "--reason", "bad release", "--key", f.w.k("revocation")] + f.to(f.all))
    #expect(again.status == 64)
    #expect(again.stderr.contains("is already revoked"), "\(again.stderr)")
  }

  @Test func laggingStoresAreBroughtForwardByTheNextPublish() throws {
    let f = try Fleet.make("lag", setup: .copyRoot)
    try f.publish(f.all)
    // Index version 2 reaches only the directory; then root version 2 too.
    try f.publish([f.directory], recipes: try f.changedRecipes("v2"))
    var r = try f.run(["registry", "rotate-root", "--index-key", f.w.k("index2") + ".pub", "--sign", f.w.k("root"), "--to", f.directory])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try f.status().status == 2)
    // Before: "targets disagree on the root". Now the git repository and the bucket get root
    // version 2 and what index version 2 pinned, and all three index version 3.
    r = try f.run(f.publishArgs(f.all, recipes: try f.changedRecipes("v3"), key: "index2"))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(!r.stderr.contains("disagree"))
    try f.expectEqual("the publish after a lagging state")
    for url in f.all {
      let s = try StoreURL.openReader(url, environment: f.admin)
      #expect(try s.readDocument(.root(2), maxSize: 1 << 20) != nil, "\(url)")
    }
    // A client reads every store.
    for url in f.all {
      let home = f.w.dir.file("home-" + String(url.hashValue.magnitude))
      var c = try f.run(["init", "--root", f.w.dir.file("root.json"), "--source", url], env: ["TSUKU_HOME": home])
      #expect(c.status == 0, "\(c.stderr)")
      c = try f.run(["update-registry"], env: ["TSUKU_HOME": home])
      #expect(c.status == 0, "\(url): \(c.stderr)")
    }
  }

  @Test func resignBringsAStoreMissingAnIndexVersionForward() throws {
    let f = try Fleet.make("resign-lag", setup: .copyRoot)
    try f.publish(f.all)
    try f.publish([f.bucket], recipes: try f.changedRecipes("v2"))
    let r = try f.run(["registry", "resign", "--key", f.w.k("index")] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("published index version 3"), "\(r.out)")
    try f.expectEqual("resign over a lagging store")
  }

  @Test func aStoreWithAnotherRootIsRefusedAndNothingIsWritten() throws {
    let f = try Fleet.make("diverged", setup: .copyRoot)
    try f.publish(f.all)
    let other = f.w.dir.file("other-dir")
    var r = try f.run(["registry", "init", "--to", other] + f.rootKeys(root: "root2"))
    #expect(r.status == 0, "\(r.stderr)")
    let before = try f.indexFiles()
    r = try f.run(f.publishArgs([f.git, other, f.directory], recipes: try f.changedRecipes("v2")))
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("root version 1 other than the one in"), "\(r.stderr)")
    #expect(r.stderr.contains("nothing written"), "\(r.stderr)")
    #expect(try f.indexFiles() == before)
    // init with other keys onto a store that has a root: refused too.
    r = try f.run(["registry", "init"] + f.to(f.all) + f.rootKeys(root: "root2"))
    #expect(r.status != 0)
    #expect(try f.indexFiles() == before)
  }

  @Test func initOverManyStoresCopiesAnExistingRootWithTheSameKeys() throws {
    let f = try Fleet.make("init-copy", setup: .none)
    var r = try f.run(["registry", "init", "--to", f.git] + f.rootKeys())
    #expect(r.status == 0, "\(r.stderr)")
    let root = try #require(try StoreURL.openReader(f.git).readDocument(.root(1), maxSize: 1 << 20))
    r = try f.run(["registry", "init"] + f.to(f.all) + f.rootKeys())
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("already has root version 1 with these keys and thresholds; copied it"), "\(r.out)")
    for url in f.all {
      #expect(try StoreURL.openReader(url, environment: f.admin).readDocument(.root(1), maxSize: 1 << 20) == root, "\(url)")
    }
    // Once all hold it: the usage error of a second init.
    r = try f.run(["registry", "init"] + f.to(f.all) + f.rootKeys())
    #expect(r.status == 64)
    #expect(r.stderr.contains("already has root/1.root.json"), "\(r.stderr)")
    // Different keys onto a store with root version 1: refused.
    r = try f.run(["registry", "init", "--to", f.directory] + f.rootKeys(root: "root2"))
    #expect(r.status == 64)
  }

  @Test func initStageSignAndPublishStagedToTwoStores() throws {
    let f = try Fleet.make("init-stage", setup: .none)
    let staged = f.w.dir.file("root1.staged.json")
    // Two root keys, both required: the first machine signs with one.
    var r = try f.run([
      "registry", "init", "--stage", staged, "--root-key", f.w.k("root") + ".pub", "--root-key", f.w.k("root2") + ".pub",
      "--root-threshold", "2", "--index-key", f.w.k("index") + ".pub", "--revocation-key", f.w.k("revocation") + ".pub",
      "--sign", f.w.k("root"),
    ])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("staged root version 1"), "\(r.out)")
    // Not enough signatures yet.
    r = try f.run(["registry", "publish", "--staged", staged] + f.to([f.directory, f.git]))
    #expect(r.status == 4, "\(r.stderr)")
    #expect(try StoreURL.openReader(f.git).readDocument(.root(1), maxSize: 1 << 20) == nil)
    // An index key holds no role for a staged root.
    r = try f.run(["registry", "sign", "--staged", staged, "--key", f.w.k("index")])
    #expect(r.status == 64, "\(r.stderr)")
    r = try f.run(["registry", "sign", "--staged", staged, "--key", f.w.k("root2")])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("root (root version 1 keys): 2 of 2 required"), "\(r.out)")
    r = try f.run(["registry", "publish", "--staged", staged] + f.to([f.directory, f.git]))
    #expect(r.status == 0, "\(r.stderr)")
    let a = try StoreURL.openReader(f.directory).readDocument(.root(1), maxSize: 1 << 20)
    let b = try StoreURL.openReader(f.git).readDocument(.root(1), maxSize: 1 << 20)
    #expect(a != nil && a == b)
  }

  @Test func publishStagedOverTwoStoresCatchesUpTheLaggingOne() throws {
    let f = try Fleet.make("pub-staged", setup: .copyRoot)
    try f.publish(f.all)
    try f.publish([f.directory], recipes: try f.changedRecipes("v2"))
    let staged = f.w.dir.file("index.staged.json")
    var r = try f.run(
      ["registry", "resign", "--key", f.w.k("index"), "--stage", staged] + f.to([f.directory, f.git]))
    #expect(r.status == 0, "\(r.stderr)")
    r = try f.run(["registry", "publish", "--staged", staged] + f.to([f.directory, f.git]))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try f.status([f.directory, f.git]).status == 0)
    // The same staged file again, now with the bucket too: what it wrote is copied there.
    r = try f.run(["registry", "publish", "--staged", staged] + f.to(f.all))
    #expect(r.status == 0, "\(r.stderr)")
    try f.expectEqual("publish --staged again with the bucket")
  }
}
