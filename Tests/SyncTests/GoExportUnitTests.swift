import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// `GoExport` on its own: the export and its check through the library, at chosen times.
@Suite struct GoExportUnitTests {
  @Test func checkRefusesAnExportWhoseSignedIndexHasExpired() throws {
    let w = try World()
    let dir = w.f.dir.file("out/export")
    let client = try w.client()
    let r = try GoExport.export(client: client, to: dir, golden: true, warn: { _ in }, progress: { _ in })
    #expect(r.recipes == 2 && r.golden == 1 && !r.replaced)
    let root = try client.trust().0
    let now = GoExport.check(dir: dir, root: root, revoked: [:], now: w.f.now)
    #expect(now.ok, "\(now.problems)")
    #expect(now.files_checked == 2 + 1 + 2)
    // The fixture publishes an index that expires in 30 days.
    let later = GoExport.check(dir: dir, root: root, revoked: [:], now: w.later(31 * 86400))
    #expect(!later.ok)
    #expect(later.problems.count == 1)
    #expect(later.problems.first?.path == ".tsuku-export/index.json")
    #expect(later.problems.first?.problem.contains("expired at") == true)
    // Another registry's root does not verify it.
    let other = try RegistryFixture()
    let foreign = GoExport.check(dir: dir, root: other.root, revoked: [:], now: w.f.now)
    #expect(!foreign.ok && foreign.problems.first?.path == ".tsuku-export/index.json")
  }

  @Test func revokedNamesLeaveEverySatisfiesListAndEmptyListsGo() {
    let recipes = [
      GoLayout.ManifestRecipe(name: "a", satisfies: ["homebrew": ["x", "y"], "aliases": ["x"]]),
      GoLayout.ManifestRecipe(name: "b", satisfies: ["homebrew": ["z"]]),
    ]
    let (out, dropped) = GoExport.withoutSatisfies(recipes, names: ["x"])
    #expect(out[0].satisfies == ["homebrew": ["y"]])
    #expect(out[1].satisfies == ["homebrew": ["z"]])
    #expect(
      dropped == [
        .init(recipe: "a", ecosystem: "aliases", name: "x"), .init(recipe: "a", ecosystem: "homebrew", name: "x"),
      ])
    #expect(GoExport.withoutSatisfies(recipes, names: []).0 == recipes)
  }

  @Test func theFolderIsCleanedByItsTextAndSlashIsRefused() throws {
    #expect(try GoExport.split("/srv/a/./b/../reg//").0 == "/srv/a/reg")
    #expect(try GoExport.split("/srv/reg").1 == "/srv")
    #expect(try GoExport.split("/reg").1 == "/")
    #expect(try GoExport.split("rel/x").0 == FileManager.default.currentDirectoryPath + "/rel/x")
    for bad in ["/", "", "/..", "/a/.."] {
      #expect(throws: TsukuError.self, "\(bad)") { try GoExport.split(bad) }
    }
  }
}
