import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `registry health` names the root it verified with, and suggests `--root` when the check
/// failed only because it used the built-in sample root.
@Suite struct HealthRootTests {
  @Test func healthWithoutRootNamesTheRootItCheckedAndSuggestsRoot() throws {
    let w = try CLIWorld()
    try w.setUp()
    // A home that trusts nothing yet: the built-in sample root, whose keys did not sign this registry.
    let fresh = ["TSUKU_HOME": w.dir.file("fresh-home")]
    var r = try w.run("registry", "health", "--source", w.store, env: fresh)
    #expect(r.status == 2, "\(r.out) \(r.stderr)")
    #expect(r.out.split(separator: "\n").count == 1, "\(r.out)")
    #expect(r.out.contains("is not signed by"), "\(r.out)")
    #expect(r.out.contains("checked against the built-in sample root (version 1)"), "\(r.out)")
    #expect(r.out.contains("pass --root FILE"), "\(r.out)")
    r = try w.run("registry", "health", "--source", w.store, "--json", env: fresh)
    let json = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
    #expect((json?["root"] as? String)?.hasPrefix("the built-in sample root") == true)
    #expect((json?["hint"] as? String)?.contains("--root") == true)

    // The home set up by `tsuku init --root`: healthy, and says which root.
    r = try w.run("registry", "health", "--source", w.store)
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("checked against this home's trusted root (version 1)"), "\(r.out)")
    #expect(!r.out.contains("--root FILE"))

    // An explicit root is named as given.
    let rootFile = w.dir.file("store/root/1.root.json")
    r = try w.run("registry", "health", "--source", w.store, "--root", rootFile, env: fresh)
    #expect(r.status == 0, "\(r.out) \(r.stderr)")
    #expect(r.out.contains("checked against --root \(rootFile) (version 1)"), "\(r.out)")
  }
}
