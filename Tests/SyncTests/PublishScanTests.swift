import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The scan of a publish: files read on every core, only names, sizes and paths kept.
@Suite struct PublishScanTests {
  /// Valid recipes `t00000`… filling more than one scan chunk, and how many.
  static func moreThanOneChunk() -> ([String: String], Int) {
    let n = Publisher.scanChunk + 600
    var recipes = [String: String]()
    for i in 0..<n { recipes[String(format: "t%05d", i)] = RegistryFixture.recipe(String(format: "t%05d", i)) }
    return (recipes, n)
  }

  @Test func theFirstBadFileInPathOrderIsReportedAcrossChunks() throws {
    let f = try RegistryFixture()
    let (all, n) = Self.moreThanOneChunk()
    var recipes = all
    // Two bad files, in different chunks: the earlier one is named, whichever is read first.
    recipes["t00010"] = "not toml ["
    recipes[String(format: "t%05d", n - 3)] = "[metadata]\nname = \"wrong\"\n"
    let input = try f.writeInput(recipes: recipes)
    let e = #expect(throws: TsukuError.self) { try Publisher.scan(input) }
    #expect(e?.code == .usage)
    #expect(e?.message.hasPrefix("t00010.toml: ") == true, "\(e?.message ?? "")")
  }

  @Test func sameBytesAreOneBlobAndOnlyFiveNotesAreKept() throws {
    let f = try RegistryFixture()
    var recipes = [String: String]()
    var golden = [String: String]()
    for i in 0..<7 {
      recipes["tool\(i)"] = RegistryFixture.recipe("tool\(i)")
      // The plan says another version than the name: indexed by the name, with a note.
      golden["tool\(i)/v1.0.0-linux-amd64.json"] = RegistryFixture.golden("tool\(i)", version: "dev")
    }
    // Two copies of one golden file under two versions of one tool: one blob.
    golden["tool0/v2.0.0-linux-amd64.json"] = golden["tool0/v1.0.0-linux-amd64.json"]
    let input = try f.writeInput(recipes: recipes, golden: golden)
    try Data().write(to: URL(fileURLWithPath: input.golden! + "/.hidden.json"))
    let scan = try Publisher.scan(input)
    #expect(scan.entries.count == 7 && scan.goldenCount == 8)
    #expect(scan.blobs.count == 7 + 7)
    #expect(Set(scan.blobs.map(\.id)).count == scan.blobs.count)
    #expect(scan.notes.count == 5 && scan.noteCount == 8)
    #expect(scan.skipped.isEmpty)
    // Each blob reads back its own file, checked.
    for b in scan.blobs { #expect(SHA256.hash(try b.load()) == b.id) }
    let tool0 = try #require(scan.entries.first { $0.name == "tool0" })
    #expect(tool0.golden.map(\.version) == ["1.0.0", "2.0.0"] && tool0.golden[0].sha256 == tool0.golden[1].sha256)
  }

  @Test func reportingListsEveryRefusedFileWithItsReasonAndKeepsTheRest() throws {
    let f = try RegistryFixture()
    let (all, n) = Self.moreThanOneChunk()
    var recipes = all
    // Bad files in different chunks, a name in both sets, golden files without a valid recipe.
    recipes["t00010"] = "not toml ["
    recipes[String(format: "t%05d", n - 3)] = "[metadata]\nname = \"wrong\"\n"
    let input = try f.writeInput(
      recipes: recipes, critical: ["t00020": RegistryFixture.recipe("t00020")],
      golden: [
        "t00010/v1.0.0-linux-amd64.json": RegistryFixture.golden("t00010", version: "1.0.0"),
        "gone/v1.0.0-linux-amd64.json": RegistryFixture.golden("gone", version: "1.0.0"),
        "t00011/v1.0.0-linux-amd64.json": RegistryFixture.golden("t00011", version: "1.0.0"),
      ])
    let big = input.recipes! + "/b/big.toml"
    try FileManager.default.createDirectory(atPath: input.recipes! + "/b", withIntermediateDirectories: true)
    try Data(count: Publisher.maxFileSize + 1).write(to: URL(fileURLWithPath: big))

    let scan = try Publisher.scan(input, mode: .reportRefusals)
    let bad = String(format: "t%05d", n - 3)
    #expect(
      scan.refused.map(\.path) == [
        input.recipes! + "/b/big.toml", input.recipes! + "/t/t00010.toml", input.recipes! + "/t/t00020.toml",
        input.recipes! + "/t/\(bad).toml", input.golden! + "/gone/v1.0.0-linux-amd64.json",
        input.golden! + "/t00010/v1.0.0-linux-amd64.json",
      ])
    let reasons = scan.refused.map(\.reason)
    #expect(reasons[0] == "\(Publisher.maxFileSize + 1) bytes, more than the \(Publisher.maxFileSize) allowed")
    #expect(reasons[2] == "recipe 't00020' is also in the critical set")
    #expect(reasons[3] == "metadata.name 'wrong' does not match the file name '\(bad)'")
    #expect(reasons[4] == "golden file for 'gone', which has no valid recipe")
    #expect(reasons[5] == "golden file for 't00010', which has no valid recipe")
    #expect(reasons.allSatisfy { !$0.contains("/") && !$0.contains("\n") }, "\(reasons)")
    // The rest is kept: the good recipes (the critical one once) and the one good golden file.
    #expect(scan.entries.count == n - 2 && scan.goldenCount == 1 && scan.criticalCount == 1)
    #expect(scan.accepted.count == n - 2 + 1)
    #expect(scan.accepted.contains(input.golden! + "/t00011/v1.0.0-linux-amd64.json"))
    #expect(Set(scan.accepted).isDisjoint(with: scan.refused.map(\.path)))

    // Stopping at the first refusal, the same input fails on the first of them, as publish does.
    let e = #expect(throws: TsukuError.self) { try Publisher.scan(input) }
    #expect(e?.message == "\(big): \(reasons[0])")
  }
}
