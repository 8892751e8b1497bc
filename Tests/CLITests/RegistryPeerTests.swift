import Foundation
import Store
import Sync
import Testing
import TestSupport

/// The Go client's own registry code, built in the test run, reads the layout `GoLayout`
/// describes: a recipe at its path comes back byte-identical, and `recipes.json` parses.
@Suite(.serialized) struct RegistryPeerTests {
  @Test(.enabled(if: RegistryPeer.available || ProcessInfo.processInfo.environment["CI"] == "true"))
  func goClientReadsTheLayout() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-golayout")
    let base = dir.path + "/registry"
    var recipes = [GoLayout.ManifestRecipe]()
    for name in ["fzf", "ripgrep", "7zip"] {
      let bytes = Data(RegistryFixture.recipe(name).utf8)
      let path = base + "/" + GoLayout.recipePath(name)
      try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try bytes.write(to: URL(fileURLWithPath: path))
      recipes.append(try #require(GoLayout.manifestRecipe(bytes)))
    }
    try FileManager.default.createDirectory(atPath: base + "/_site", withIntermediateDirectories: true)
    try GoLayout.manifest(recipes, generatedAt: Date()).write(to: URL(fileURLWithPath: base + "/_site/recipes.json"))

    let home = dir.path + "/home"
    let got = try RegistryPeer.run(["get", "ripgrep"], registry: base, home: home)
    #expect(got.status == 0, "\(got.stderr)")
    #expect(got.stdout == Data(RegistryFixture.recipe("ripgrep").utf8))
    let fetched = try RegistryPeer.run(["fetch", "7zip"], registry: base, home: home)
    #expect(fetched.stdout == Data(RegistryFixture.recipe("7zip").utf8))
    let manifest = try RegistryPeer.run(["manifest"], registry: base, home: home)
    #expect(manifest.status == 0, "\(manifest.stderr)")
    #expect(String(decoding: manifest.stdout, as: UTF8.self) == "3\n7zip\nfzf\nripgrep\n")
    let missing = try RegistryPeer.run(["get", "nosuch"], registry: base, home: home)
    #expect(missing.status == 3)
  }
}
