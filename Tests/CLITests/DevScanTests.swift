import Foundation
import Store
import Sync
import TestSupport
import Testing

/// `tsuku-dev scan`: publish's validation as a JSON report, what tools/replay-corpus filters with.
@Suite struct DevScanTests {
  /// The built `tsuku-dev`, beside the built `tsuku`.
  let bin = URL(fileURLWithPath: tsukuBinary(checkout: checkout)).deletingLastPathComponent().path + "/tsuku-dev"

  struct Report: Decodable {
    struct Refusal: Decodable { var path: String, reason: String }
    var recipes: Int, critical: Int, golden: Int, skipped: Int
    var refused: [Refusal]
    var accepted: [String]
  }

  @Test func scanPrintsEveryRefusedFileWithItsReasonAndEveryKeptOne() throws {
    let f = try RegistryFixture()
    let input = try f.writeInput(
      recipes: ["good": RegistryFixture.recipe("good"), "broken": "[metadata]\nname = \"broken\"\n"],
      golden: [
        "good/v1.0.0-linux-amd64.json": RegistryFixture.golden("good", version: "1.0.0"),
        "broken/v1.0.0-linux-amd64.json": RegistryFixture.golden("broken", version: "1.0.0"),
      ])
    try Data("notes".utf8).write(to: URL(fileURLWithPath: input.recipes! + "/README.md"))
    let r = try runTsuku(
      ["scan", "--recipes", input.recipes!, "--critical", input.critical!, "--golden", input.golden!], env: [:],
      binary: bin)
    #expect(r.status == 0, "\(r.stderr)")
    let report = try JSONDecoder().decode(Report.self, from: r.stdout)
    #expect(report.recipes == 1 && report.critical == 0 && report.golden == 1 && report.skipped == 1)
    #expect(
      report.refused.map(\.path) == [
        input.recipes! + "/b/broken.toml", input.golden! + "/broken/v1.0.0-linux-amd64.json",
      ])
    #expect(
      report.refused.map(\.reason) == ["no [[steps]] entries", "golden file for 'broken', which has no valid recipe"])
    #expect(report.accepted == [input.recipes! + "/g/good.toml", input.golden! + "/good/v1.0.0-linux-amd64.json"])
  }

  @Test func aFolderThatDoesNotExistIsExit64() throws {
    let f = try RegistryFixture()
    let r = try runTsuku(["scan", "--recipes", f.dir.file("nowhere")], env: [:], binary: bin)
    #expect(r.status == 64)
    #expect(r.stderr == "error: '\(f.dir.file("nowhere"))' is not a directory\n")
    #expect(r.stdout.isEmpty)
  }
}
