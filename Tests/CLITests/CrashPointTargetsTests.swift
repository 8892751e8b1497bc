import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A multi-store command killed (an injected crash point, as `kill -9`) after each target in
/// turn: the stores stay readable (status reports them lagging, never invalid or diverged), and
/// the same command run again makes them agree.
@Suite(.serialized) struct CrashPointTargetsTests {
  /// Runs `command` killed after its `k`th target, checks the stores, runs it again.
  func crashAfterEachTarget(_ name: String, prepare: (Fleet) throws -> Void = { _ in }, command: (Fleet) -> [String]) throws {
    for k in 1...3 {
      let f = try Fleet.make("\(name)-\(k)", setup: .copyRoot)
      try f.publish(f.all)
      try prepare(f)
      let crashed = try f.run(command(f), env: ["TSUKU_TEST_CRASH_AT": String(k), "TSUKU_TEST_CRASH_LABEL": "after target"])
      #expect(crashed.status == 128 + SIGKILL, "\(name) after target \(k): \(crashed.status) \(crashed.stderr)")
      #expect(crashed.stderr.contains("crash point \(k): after target \(try StoreURL.open(f.all[k - 1], environment: f.admin).location)"), "\(crashed.stderr)")
      // Readable: every store verifies, each agrees or lags (never invalid or diverged).
      let s = try f.status(json: true)
      #expect(s.status == (k == 3 ? 0 : 2), "\(name) after target \(k): \(s.out)")
      let j = try #require(try JSONSerialization.jsonObject(with: s.stdout) as? [String: Any])
      let states = try #require(j["targets"] as? [[String: Any]]).map { $0["status"] as? String }
      #expect(states.allSatisfy { $0 == "agrees" || $0 == "lagging" }, "\(name) after target \(k): \(states)")
      #expect(states.filter { $0 == "agrees" }.count == k, "\(states)")
      // A client syncs from each store.
      for (i, url) in f.all.enumerated() {
        let home = f.w.dir.file("home-\(i)")
        var c = try f.run(["init", "--root", f.w.dir.file("root.json"), "--source", url], env: ["TSUKU_HOME": home])
        #expect(c.status == 0, "\(c.stderr)")
        c = try f.run(["update-registry"], env: ["TSUKU_HOME": home])
        #expect(c.status == 0, "\(name) after target \(k), \(url): \(c.stderr)")
      }
      let again = try f.run(command(f))
      if name == "revoke" && k == 3 {
        // Every store took the revocation: the same command is the usage error it always was.
        #expect(again.status == 64, "\(again.stderr)")
        #expect(again.stderr.contains("is already revoked"))
      } else {
        #expect(again.status == 0, "\(name) again after target \(k): \(again.stderr)")
      }
      if name == "revoke" && k < 3 { #expect(again.out.contains("copied it to the stores that lacked it"), "\(again.out)") }
      if name == "rotate-root" && k < 3 { #expect(again.out.contains("copied it to the stores that lacked it"), "\(again.out)") }
      try f.expectEqual("\(name) again after target \(k)")
    }
  }

  @Test func publishKilledAfterEachTarget() throws {
    try crashAfterEachTarget("publish") { f in
      f.publishArgs(f.all, recipes: (try? f.changedRecipes("changed")) ?? "")
    }
  }

  @Test func revokeKilledAfterEachTarget() throws {
    try crashAfterEachTarget("revoke") { f in
      ["registry", "revoke", f.fzfHash, "--reason", "bad release", "--key", f.w.k("revocation")] + f.to(f.all)
    }
  }

  @Test func rotateRootKilledAfterEachTarget() throws {
    try crashAfterEachTarget("rotate-root") { f in
      ["registry", "rotate-root", "--index-key", f.w.k("index2") + ".pub", "--sign", f.w.k("root")] + f.to(f.all)
    }
  }
}
