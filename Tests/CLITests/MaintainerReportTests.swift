import Foundation
import Store
import Sync
import Testing

import TestSupport

private func json(_ r: CommandResult) throws -> [String: Any] {
  try #require(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "not JSON: \(r.out)")
}

/// Every file under `dir` whose relative path passes `keep`, with its size.
private func files(_ dir: String, _ keep: (String) -> Bool) -> [(String, Int)] {
  let e = FileManager.default.enumerator(atPath: dir)!
  var out = [(String, Int)]()
  while let rel = e.nextObject() as? String {
    let attrs = try? FileManager.default.attributesOfItem(atPath: dir + "/" + rel)
    if attrs?[.type] as? FileAttributeType == .typeRegular, keep(rel) { out.append((rel, attrs?[.size] as? Int ?? -1)) }
  }
  return out
}

@Suite struct MaintainerReportTests {
  let fixture = checkout + "/Tests/Fixtures/drift"

  @Test("registry drift: exit 2 with each differing field on the real drifted pairs, JSON for scripts")
  func driftCommandReportsFieldsAndExitCodes() throws {
    let w = try CLIWorld()
    var r = try w.run("registry", "drift", "--recipes", fixture + "/recipes", "--testdata", fixture + "/testdata")
    #expect(r.status == 2, "\(r.stderr)")
    #expect(r.out.contains("ok: recipes/gh.toml -> recipes/g/gh.toml\n"))
    #expect(r.out.contains("drift: recipes/mkcert.toml -> recipes/m/mkcert.toml\n"))
    #expect(r.out.contains("  steps[0].action: \"homebrew\" -> \"github_file\"\n"))
    #expect(r.out.contains("  steps[1]: { action = \"install_binaries\", binaries = [\"bin/mkcert\"] } -> (absent)\n"))
    #expect(r.out.contains("  steps[0].binaries: (absent) -> [{ dest = \"bin/skaffold\", src = \"skaffold-{os}-{arch}\" }]\n"))
    #expect(r.out.hasSuffix("3 linked test recipes: 1 in step, 2 drifted, 0 missing, 0 invalid; 0 without source_recipe\n"))

    r = try w.run("registry", "drift", "--recipes", fixture + "/recipes", "--testdata", fixture + "/testdata", "--json")
    #expect(r.status == 2)
    let j = try json(r)
    #expect(j["status"] as? String == "drift")
    #expect(j["checked"] as? Int == 3)
    #expect(j["drifted"] as? Int == 2)
    let results = j["results"] as? [[String: Any]] ?? []
    let skaffold = results.first { $0["test_recipe"] as? String == "recipes/skaffold.toml" }
    let diffs = skaffold?["differences"] as? [[String: Any]] ?? []
    #expect(diffs.map { $0["path"] as? String } == ["steps[0].binaries", "steps[0].binary"])
    #expect(diffs.first?["change"] as? String == "added")
    #expect(diffs.first?["old"] is NSNull)
    #expect((diffs.first?["new"] as? [[String: String]])?.first == ["src": "skaffold-{os}-{arch}", "dest": "bin/skaffold"])
    #expect(diffs.last?["old"] as? String == "skaffold")

    // Bring the test copies in step with production (keeping the link): exit 0.
    let test = w.dir.file("testdata")
    try FileManager.default.createDirectory(atPath: test, withIntermediateDirectories: true)
    for (name, letter) in [("gh", "g"), ("mkcert", "m"), ("skaffold", "s")] {
      let prod = try String(contentsOfFile: fixture + "/recipes/\(letter)/\(name).toml", encoding: .utf8)
      let linked = prod.replacingOccurrences(
        of: "name = \"\(name)\"\n", with: "name = \"\(name)\"\nsource_recipe = \"recipes/\(letter)/\(name).toml\"\n")
      #expect(linked != prod)
      try Data(linked.utf8).write(to: URL(fileURLWithPath: test + "/\(name).toml"))
    }
    r = try w.run("registry", "drift", "--recipes", fixture + "/recipes", "--testdata", test)
    #expect(r.status == 0, "\(r.out)\(r.stderr)")
    #expect(r.out.hasSuffix("3 linked test recipes: 3 in step, 0 drifted, 0 missing, 0 invalid; 0 without source_recipe\n"))

    // A missing source recipe: a finding (exit 2) with its reason on the line.
    try Data("[metadata]\nname = \"x\"\nsource_recipe = \"recipes/x/x.toml\"\n".utf8).write(
      to: URL(fileURLWithPath: test + "/x.toml"))
    r = try w.run("registry", "drift", "--recipes", fixture + "/recipes", "--testdata", test)
    #expect(r.status == 2)
    #expect(r.out.contains("missing: x.toml -> recipes/x/x.toml: source recipe 'recipes/x/x.toml' not found: no file '\(fixture)/recipes/x/x.toml'\n"))

    // Bad input: exit 64 with the value at fault.
    r = try w.run("registry", "drift", "--recipes", w.dir.file("nope"), "--testdata", test)
    #expect(r.status == 64)
    #expect(r.stderr == "error: --recipes '\(w.dir.file("nope"))' is not a directory\n")
    r = try w.run("registry", "drift", "--recipes", fixture + "/recipes")
    #expect(r.status == 64)
  }

  @Test("registry size-report over folders: counts, bytes and the largest files are the files' own")
  func sizeReportOverFoldersMatchesTheFiles() throws {
    let w = try CLIWorld()
    let src = checkout + "/registry-index/source"
    let r = try w.run(
      "registry", "size-report", "--recipes", src + "/recipes", "--critical", src + "/embedded", "--golden", src + "/golden",
      "--top", "3", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let j = try json(r)
    let recipeFiles =
      files(src + "/recipes") { $0.hasSuffix(".toml") && $0.split(separator: "/").count == 2 }
      + files(src + "/embedded") { $0.hasSuffix(".toml") }
    let goldenFiles = files(src + "/golden") { $0.hasSuffix(".json") }
    let recipes = j["recipes"] as? [String: Any]
    #expect(recipes?["count"] as? Int == recipeFiles.count)
    #expect(recipes?["bytes"] as? Int == recipeFiles.reduce(0) { $0 + $1.1 })
    let largest = recipes?["largest"] as? [[String: Any]] ?? []
    #expect(largest.count == 3)
    let biggest = recipeFiles.max { $0.1 < $1.1 }!
    #expect(largest.first?["bytes"] as? Int == biggest.1)
    #expect(largest.first?["name"] as? String == ((biggest.0 as NSString).lastPathComponent as NSString).deletingPathExtension)
    let sizes = largest.compactMap { $0["bytes"] as? Int }
    #expect(sizes == sizes.sorted(by: >))
    let golden = j["golden"] as? [String: Any]
    #expect(golden?["count"] as? Int == goldenFiles.count)
    #expect(golden?["bytes"] as? Int == goldenFiles.reduce(0) { $0 + $1.1 })
    #expect((golden?["largest"] as? [[String: Any]])?.first?["bytes"] as? Int == goldenFiles.map(\.1).max())
    let sorted = goldenFiles.map(\.1).sorted()
    #expect(golden?["median_bytes"] as? Int == (sorted[(sorted.count - 1) / 2] + sorted[sorted.count / 2]) / 2)
    #expect(j["measured"] as? String == "folders")
    #expect(j["index_version"] == nil)

    // The built-in set is the sample's critical recipes and their golden files, byte for byte.
    let embedded = j["embedded"] as? [String: Any]
    let critical = files(src + "/embedded") { $0.hasSuffix(".toml") } + files(src + "/golden/embedded") { $0.hasSuffix(".json") }
    #expect(embedded?["recipes"] as? Int == 19)
    #expect(embedded?["golden_files"] as? Int == critical.count - 19)
    #expect(embedded?["bytes"] as? Int == critical.reduce(0) { $0 + $1.1 })
    #expect((embedded?["stored_bytes"] as? Int ?? 0) > (embedded?["bytes"] as? Int ?? 0))
    // The binary is the one that ran.
    let binary = j["binary"] as? [String: Any]
    let real = URL(fileURLWithPath: w.bin).resolvingSymlinksInPath().path
    #expect(binary?["path"] as? String == real)
    #expect(binary?["bytes"] as? Int == (try FileManager.default.attributesOfItem(atPath: real))[.size] as? Int)
    let percent = embedded?["percent_of_binary"] as? Double ?? -1
    #expect(percent > 0 && percent < 100)
  }

  @Test("registry size-report: the synced cache and the source it came from give the same figures; a table by default")
  func sizeReportFromCacheAndSourceAgree() throws {
    let w = try CLIWorld()
    try w.setUp()
    var r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("registry", "size-report", "--json", "--offline")
    #expect(r.status == 0, "\(r.stderr)")
    let cached = try json(r)
    r = try w.run("registry", "size-report", "--json", "--source", w.store, "--root", w.dir.file("store/root/1.root.json"))
    #expect(r.status == 0, "\(r.stderr)")
    let source = try json(r)
    #expect(cached["measured"] as? String == "cache")
    #expect(source["measured"] as? String == "source")
    #expect(cached["index_version"] as? Int == 1)
    #expect(source["index_version"] as? Int == 1)
    for key in ["recipes", "golden"] {
      let a = cached[key] as? [String: Any]
      let b = source[key] as? [String: Any]
      #expect(a?["count"] as? Int == b?["count"] as? Int)
      #expect(a?["bytes"] as? Int == b?["bytes"] as? Int)
      #expect((a?["largest"] as? [[String: Any]])?.count == 10)
      #expect(
        (a?["largest"] as? [[String: Any]])?.map { $0["name"] as? String }
          == (b?["largest"] as? [[String: Any]])?.map { $0["name"] as? String })
    }
    #expect((cached["recipes"] as? [String: Any])?["count"] as? Int == 147)

    r = try w.run("registry", "size-report", "--top", "2", "--offline")
    #expect(r.status == 0)
    #expect(r.out.hasPrefix("binary:    "))
    #expect(r.out.contains("\nbuilt in:  "))
    #expect(r.out.contains("(index version 1)"))
    #expect(r.out.contains("\nlargest recipes:\n  bytes  category  name\n"))
    #expect(r.out.contains("\nlargest golden files:\n"))
    let rows = r.out.components(separatedBy: "largest recipes:\n")[1].components(separatedBy: "\n\n")[0]
    #expect(rows.split(separator: "\n").count == 3)  // header + --top 2

    // A source whose index does not verify against the given root is refused (exit 4).
    let other = try CLIWorld()
    try other.setUp()
    r = try w.run("registry", "size-report", "--source", other.store, "--root", w.dir.file("store/root/1.root.json"))
    #expect(r.status == 4, "\(r.stderr)")
  }

  @Test("registry size-report: bad arguments are exit 64 with the value at fault")
  func sizeReportBadArguments() throws {
    let w = try CLIWorld()
    var r = try w.run("registry", "size-report", "--top", "0")
    #expect(r.status == 64)
    #expect(r.stderr.hasPrefix("error: invalid --top '0': expected 1 to 10000"))
    r = try w.run("registry", "size-report", "--source", w.store, "--recipes", w.dir.path)
    #expect(r.status == 64)
    #expect(r.stderr.hasPrefix("error: give --source or --recipes/--critical/--golden, not both"))
    r = try w.run("registry", "size-report", "--recipes", w.dir.file("nope"))
    #expect(r.status == 64)
    #expect(r.stderr == "error: '\(w.dir.file("nope"))' is not a directory\n")
  }
}
