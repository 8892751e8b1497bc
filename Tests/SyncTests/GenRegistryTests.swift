import Foundation
import Store
import Sync
import TestSupport
import Testing

/// tools/gen-registry, the synthetic registry the scale benchmark (issue 7) publishes: what it
/// writes passes publish validation and syncs, its sizes follow the real corpus, it is the same
/// for the same seed, and its change-set mode makes a next snapshot that changes only the
/// recipes it bumped.
@Suite(.serialized) struct GenRegistryTests {
  static let checkoutDir: String = {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    return u.path
  }()
  static let tool = checkoutDir + "/tools/gen-registry"

  struct Run {
    let status: Int32
    let out: Data
    let err: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: out)) as? [String: Any] ?? [:] }
  }

  /// Runs tools/gen-registry with `args`.
  func gen(_ args: [String]) throws -> Run {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", Self.tool] + args
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Run(status: p.terminationStatus, out: o, err: String(decoding: e, as: UTF8.self))
  }

  /// Relative path -> size of every regular file under `root`.
  func sizes(under root: String) -> [String: Int] {
    var out = [String: Int]()
    guard let walker = FileManager.default.enumerator(atPath: root) else { return out }
    while let rel = walker.nextObject() as? String {
      let attrs = walker.fileAttributes ?? [:]
      if attrs[.type] as? FileAttributeType == .typeRegular { out[rel] = (attrs[.size] as? NSNumber)?.intValue ?? 0 }
    }
    return out
  }

  /// The q-quantile by nearest rank (as the tool's table is made).
  func quantile(_ values: [Int], _ q: Double) -> Int {
    let v = values.sorted()
    return v.isEmpty ? 0 : v[Int((q * Double(v.count - 1)).rounded())]
  }

  func input(_ dir: String) -> PublishInput {
    PublishInput(recipes: dir + "/recipes", critical: dir + "/critical", golden: dir + "/golden")
  }

  /// Median and 90th percentile of the corpus's recipes (tip) and community golden plans (the
  /// last snapshot before they left git), read straight from the bundle.
  func corpusReference(in tmp: String) throws -> (recipes: [Int], golden: [Int]) {
    let bare = tmp + "/corpus.git"
    try runGit(["clone", "-q", "--bare", "-b", "snapshots", corpusBundle, bare], in: tmp)
    func sizes(_ rev: String, _ paths: [String]) throws -> [(String, Int)] {
      try runGit(["ls-tree", "-r", "-l", rev] + paths, in: bare).split(separator: "\n").compactMap { line in
        let parts = line.split(separator: "\t", maxSplits: 1)
        guard parts.count == 2, let size = Int(parts[0].split(separator: " ").last ?? "") else { return nil }
        return (String(parts[1]), size)
      }
    }
    let recipes = try sizes("HEAD", ["registry/recipes", "registry/embedded"]).filter { $0.0.hasSuffix(".toml") }.map(\.1)
    let deleted = try runGit(["log", "-1", "--format=%H", "--diff-filter=D", "--", "registry/golden/plans/a"], in: bare)
    let golden = try sizes(deleted + "^", ["registry/golden/plans"]).filter {
      !$0.0.hasPrefix("registry/golden/plans/embedded/") && $0.0.hasSuffix(".json")
    }.map(\.1)
    return (recipes, golden)
  }

  @Test(.timeLimit(.minutes(10)))
  func fiveHundredRecipesPublishSyncAndFollowTheCorpusSizes() throws {
    let fx = try RegistryFixture()
    let tmp = fx.dir.path
    let out = tmp + "/gen"
    let r = try gen(["--recipes", "500", "--seed", "11", "--out", out, "--json"])
    #expect(r.status == 0, "\(r.err)")
    let report = r.json
    #expect(report["recipes"] as? Int == 500)
    let critical = try #require(report["critical"] as? Int)
    #expect(critical == 10)

    // The files on disk, read here (not the tool's own summary).
    let recipeFiles = sizes(under: out + "/recipes").filter { $0.key.hasSuffix(".toml") }
    let criticalFiles = sizes(under: out + "/critical")
    let goldenFiles = sizes(under: out + "/golden")
    #expect(recipeFiles.count + criticalFiles.count == 500)
    #expect(criticalFiles.count == critical)
    #expect(recipeFiles.keys.allSatisfy { $0.split(separator: "/").count == 2 && $0.first == $0.split(separator: "/")[1].first })
    let perRecipe = Double(goldenFiles.count) / 500
    #expect(perRecipe > 2.2 && perRecipe < 2.7, "\(goldenFiles.count) golden files for 500 recipes")

    // Publish validation: every file accepted, no skipped file, no plan that disagrees with its name.
    let store = DirectoryStore(path: tmp + "/store")
    try fx.initialize(store)
    let published = try fx.publish(input(out), to: store)
    #expect(published.scan.entries.count == 500)
    #expect(published.scan.criticalCount == critical)
    #expect(published.scan.goldenCount == goldenFiles.count)
    #expect(published.scan.skipped.isEmpty, "\(published.scan.skipped.prefix(3))")
    #expect(published.scan.notes.isEmpty, "\(published.scan.notes.prefix(3))")

    // A client syncs it and reads back the same bytes.
    let client = try fx.client(["file://" + store.root])
    let sync = try client.updateRegistry()
    #expect(sync.recipes == 500)
    #expect(sync.golden == goldenFiles.count)
    let (rel, _) = try #require(recipeFiles.min { $0.key < $1.key })
    let name = String(rel.split(separator: "/")[1].dropLast(5))
    #expect(try client.recipe(name) == FileManager.default.contents(atPath: out + "/recipes/" + rel))

    // Sizes: median and 90th percentile within 20% of the corpus's. The reference is the table
    // shipped with the tool, and the real corpus when it is beside the checkout.
    let table = try gen(["--table"]).json
    let ref = try #require(table["reference"] as? [String: [String: Any]])
    let refRecipes = (median: try #require(ref["recipes"]?["median"] as? Int), p90: try #require(ref["recipes"]?["p90"] as? Int))
    let refGolden = (median: try #require(ref["golden"]?["median"] as? Int), p90: try #require(ref["golden"]?["p90"] as? Int))
    if corpusAvailable {
      let corpus = try corpusReference(in: tmp)
      #expect(quantile(corpus.recipes, 0.5) == refRecipes.median, "the tool's table is stale: run tools/gen-registry --derive-table")
      #expect(quantile(corpus.recipes, 0.9) == refRecipes.p90)
      #expect(quantile(corpus.golden, 0.5) == refGolden.median)
      #expect(quantile(corpus.golden, 0.9) == refGolden.p90)
      #expect(corpus.golden.count == 378)
    }
    let recipes = Array(recipeFiles.values) + Array(criticalFiles.values)
    // The corpus's golden reference is its community golden plans; the critical set's plans
    // (golden/embedded, 59 of ~1,240 here) are compared with the same bounds on their own below.
    let community = goldenFiles.filter { !$0.key.hasPrefix("embedded/") }.map(\.value)
    func within(_ got: Int, _ want: Int, _ what: String) {
      let ratio = Double(got) / Double(want)
      #expect(ratio >= 0.8 && ratio <= 1.2, "\(what): \(got) bytes, corpus \(want) bytes (\(ratio)x)")
    }
    within(quantile(recipes, 0.5), refRecipes.median, "recipe median")
    within(quantile(recipes, 0.9), refRecipes.p90, "recipe 90th percentile")
    within(quantile(community, 0.5), refGolden.median, "golden median")
    within(quantile(community, 0.9), refGolden.p90, "golden 90th percentile")
    let all = Array(goldenFiles.values)
    within(quantile(all, 0.5), refGolden.median, "golden median, critical plans included")
    // Largest plans embed lock files, as the real npm and cargo plans do.
    #expect(community.max() ?? 0 > 100_000)
  }

  @Test(.timeLimit(.minutes(5)))
  func theSameSeedMakesTheSameBytesAndAnotherSeedDoesNot() throws {
    let tmp = try TemporaryDirectory()
    for (dir, seed) in [("a", "5"), ("b", "5"), ("c", "6")] {
      let r = try gen(["--recipes", "80", "--seed", seed, "--out", tmp.file(dir), "--jobs", dir == "a" ? "1" : "2"])
      #expect(r.status == 0, "\(r.err)")
    }
    func contents(_ dir: String) -> [String: Data] {
      var out = [String: Data]()
      for rel in sizes(under: dir).keys where !rel.hasPrefix("gen-registry.") {
        out[rel] = FileManager.default.contents(atPath: dir + "/" + rel)
      }
      return out
    }
    let a = contents(tmp.file("a"))
    #expect(a.count > 200)
    #expect(a == contents(tmp.file("b")), "one worker or two, the same seed gives the same files")
    #expect(Set(a.keys) != Set(contents(tmp.file("c")).keys))
    // An existing folder is not replaced without --force, and is left as it was.
    let again = try gen(["--recipes", "80", "--seed", "6", "--out", tmp.file("a")])
    #expect(again.status == 1)
    #expect(again.err.contains("exists"))
    #expect(contents(tmp.file("a")) == a)
    let bad = try gen(["--from", tmp.file("a"), "--bump", "150%", "--out", tmp.file("d")])
    #expect(bad.status == 64)
    #expect(bad.err.contains("150%"))
  }

  @Test(.timeLimit(.minutes(10)))
  func aBumpChangesOnlyTheBumpedRecipesAndTheirGoldenFiles() throws {
    let fx = try RegistryFixture()
    let tmp = fx.dir.path
    let first = tmp + "/gen-1"
    let next = tmp + "/gen-2"
    #expect(try gen(["--recipes", "300", "--seed", "3", "--out", first]).status == 0)
    let before = sizes(under: first)
    let snapshot = Dictionary(uniqueKeysWithValues: before.keys.filter { !$0.hasPrefix("gen-registry.") }.map {
      ($0, FileManager.default.contents(atPath: first + "/" + $0)!)
    })
    let r = try gen(["--from", first, "--bump", "5%", "--seed", "9", "--out", next, "--json"])
    #expect(r.status == 0, "\(r.err)")
    let bump = r.json
    #expect(bump["bumped"] as? Int == 15)
    let changedBytes = try #require(bump["changed_bytes"] as? Int)

    // The first snapshot is untouched (the next one hard-links its unchanged files).
    for (rel, data) in snapshot { #expect(FileManager.default.contents(atPath: first + "/" + rel) == data, "\(rel)") }

    // The changes, as the files say: recipes whose bytes changed, golden files added and gone.
    let after = sizes(under: next).filter { !$0.key.hasPrefix("gen-registry.") }
    var changedRecipes = Set<String>()
    var written = 0
    for (rel, size) in after where snapshot[rel] != FileManager.default.contents(atPath: next + "/" + rel) {
      written += size
      if rel.hasSuffix(".toml") { changedRecipes.insert(String((rel as NSString).lastPathComponent.dropLast(5))) }
    }
    #expect(changedRecipes.count == 15)
    #expect(written == changedBytes)
    let goneGolden = Set(snapshot.keys).subtracting(after.keys)
    let newGolden = Set(after.keys).subtracting(snapshot.keys)
    #expect(goneGolden.count == (bump["removed_files"] as? Int))
    #expect(newGolden.count == (bump["added_files"] as? Int))
    // A bumped recipe's golden files moved to one new version; nothing else left or came.
    for rel in goneGolden.union(newGolden) {
      let tool = ((rel as NSString).deletingLastPathComponent as NSString).lastPathComponent
      #expect(changedRecipes.contains(tool), "\(rel) changed but \(tool) was not bumped")
    }
    for rel in newGolden {
      let plan = try #require(
        try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: next + "/" + rel)!) as? [String: Any])
      let version = try #require(plan["version"] as? String)
      #expect((rel as NSString).lastPathComponent.hasPrefix("v\(version)-"))
    }

    // Published one after the other, a client's incremental sync names exactly the bumped recipes.
    let store = DirectoryStore(path: tmp + "/store")
    try fx.initialize(store)
    try fx.publish(input(first), to: store)
    let client = try fx.client(["file://" + store.root])
    _ = try client.updateRegistry()
    try fx.publish(input(next), to: store, at: fx.now.addingTimeInterval(60))
    let sync = try client.updateRegistry()
    #expect(Set(sync.changed) == changedRecipes)
    #expect(sync.added.isEmpty && sync.removed.isEmpty)
  }
}
