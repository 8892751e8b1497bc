import Foundation
import Store
import Testing

@testable import Sync

/// The Go client's layout: paths, request routes (and the paths they refuse), and
/// `recipes.json` byte for byte as Python's `json.dump(indent=2)` writes the same data.
@Suite struct GoLayoutTests {
  @Test func pathsFollowTheGoClientsLayout() {
    #expect(GoLayout.recipePath("fzf") == "recipes/f/fzf.toml")
    #expect(GoLayout.recipePath("7zip") == "recipes/7/7zip.toml")
    #expect(
      GoLayout.planPath(name: "go", category: .critical, version: "1.22.0", platform: "linux-amd64")
        == "plans/embedded/go/v1.22.0/linux-amd64.json")
    #expect(
      GoLayout.planPath(name: "fzf", category: .community, version: "0.56.3", platform: "darwin-arm64")
        == "plans/f/fzf/v0.56.3/darwin-arm64.json")
  }

  @Test func routesNameRecipesManifestsAndPlans() throws {
    #expect(try GoLayout.route("/recipes/f/fzf.toml") == .recipe(name: "fzf"))
    #expect(try GoLayout.route("/recipes.json") == .manifest)
    #expect(try GoLayout.route("/_site/recipes.json") == .manifest)
    #expect(
      try GoLayout.route("/plans/embedded/go/v1.22.0/linux-debian-amd64.json")
        == .plan(name: "go", prefix: "embedded", version: "1.22.0", platform: "linux-debian-amd64"))
    #expect(try GoLayout.route("/") == nil)
    #expect(try GoLayout.route("/recipes/f/fzf.txt") == nil)
    #expect(try GoLayout.route("/healthz") == nil)
  }

  @Test(arguments: [
    "/recipes/../../etc/passwd", "/recipes/f/..%2f..%2fetc.toml", "/recipes/%2e%2e/x.toml", "/recipes//fzf.toml",
    "/recipes/f/fzf.toml/..", "/recipes\\f\\fzf.toml", "/recipes/f/f\u{0}zf.toml", "/recipes/g/fzf.toml",
    "/recipes/F/Fzf.toml", "/plans/x/fzf/v1/linux-amd64.json", "/plans/f/fzf/v1..2/linux-amd64.json",
    "recipes/f/fzf.toml", "/recipes/./fzf.toml",
  ])
  func traversalPathIsRefused(_ path: String) {
    #expect(throws: TsukuError.self) { try GoLayout.route(path) }
  }

  @Test func manifestRecipeReadsMetadataAndSatisfies() throws {
    let toml = """
      [metadata]
      name = "bottom"
      description = "A graphical process monitor"
      homepage = "https://github.com/ClementTsang/bottom"
      dependencies = ["zlib"]

      [metadata.satisfies]
      aliases = ["btm"]
      homebrew = ["bottom"]

      [[steps]]
      action = "github_archive"
      """
    let r = try #require(GoLayout.manifestRecipe(Data(toml.utf8)))
    #expect(r.name == "bottom")
    #expect(r.dependencies == ["zlib"])
    #expect(r.runtimeDependencies == [])
    #expect(r.satisfies == ["aliases": ["btm"], "homebrew": ["bottom"]])
    #expect(GoLayout.manifestRecipe(Data("[steps]\n".utf8)) == nil)
  }

  /// Ecosystems keep the recipe's own order (Python's tomllib keeps it, so the generator
  /// writes it): homebrew before aliases when the recipe says so.
  @Test func satisfiesKeepsTheRecipesOrder() throws {
    let toml = """
      [metadata]
      name = "openjdk"
      description = "Java"
      homepage = "https://openjdk.org"

      [metadata.satisfies]
      homebrew = ["openjdk"]
      aliases = ["java", "jdk"]
      """
    let r = try #require(GoLayout.manifestRecipe(Data(toml.utf8)))
    #expect(r.satisfiesOrder == ["homebrew", "aliases"])
    let text = String(decoding: GoLayout.manifest([r], generatedAt: Date(timeIntervalSince1970: 0)), as: UTF8.self)
    let h = try #require(text.range(of: "\"homebrew\""))
    let a = try #require(text.range(of: "\"aliases\""))
    #expect(h.lowerBound < a.lowerBound)
    let inline = """
      [metadata]
      name = "x"
      satisfies = { npm = ["x"], aliases = ["y", "z"] }
      """
    #expect(GoLayout.manifestRecipe(Data(inline.utf8))?.satisfiesOrder == ["npm", "aliases"])
  }

  /// The same recipes dumped by Python's json module (as tsuku's generator does) give the
  /// same bytes.
  @Test func manifestMatchesPythonsJSONDump() throws {
    let recipes = [
      GoLayout.ManifestRecipe(
        name: "zlib", description: "Compression \"library\"\ttab", homepage: "https://zlib.net"),
      GoLayout.ManifestRecipe(
        name: "Bat", description: "café ☕ 😀 \u{7f}", homepage: "https://x", dependencies: ["a", "b"],
        runtimeDependencies: ["c"], satisfies: ["aliases": ["batcat"], "homebrew": ["bat"]]),
      GoLayout.ManifestRecipe(name: "age", description: "back\\slash\n", homepage: ""),
    ]
    let when = Date(timeIntervalSince1970: 1_786_000_000.7)
    let ours = GoLayout.manifest(recipes, generatedAt: when)
    let script = """
      import json, sys
      from datetime import datetime, timezone
      rs = [
        {"name": "zlib", "description": "Compression \\"library\\"\\ttab", "homepage": "https://zlib.net", "dependencies": [], "runtime_dependencies": []},
        {"name": "Bat", "description": "caf\\u00e9 \\u2615 \\U0001F600 \\x7f", "homepage": "https://x", "dependencies": ["a", "b"], "runtime_dependencies": ["c"], "satisfies": {"aliases": ["batcat"], "homebrew": ["bat"]}},
        {"name": "age", "description": "back\\\\slash\\n", "homepage": "", "dependencies": [], "runtime_dependencies": []},
      ]
      out = {"schema_version": 1, "generated_at": datetime.fromtimestamp(1786000000, timezone.utc).isoformat(timespec="seconds"),
             "recipes": sorted(rs, key=lambda r: r["name"].lower())}
      json.dump(out, sys.stdout, indent=2)
      sys.stdout.write("\\n")
      """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let python = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try #require(p.terminationStatus == 0)
    #expect(String(decoding: ours, as: UTF8.self) == String(decoding: python, as: UTF8.self))
  }

  @Test func emptyManifestIsValidJSON() throws {
    let d = GoLayout.manifest([], generatedAt: Date(timeIntervalSince1970: 0))
    let o = try #require(try JSONSerialization.jsonObject(with: d) as? [String: Any])
    #expect(o["schema_version"] as? Int == 1)
    #expect((o["recipes"] as? [Any])?.isEmpty == true)
    #expect(o["generated_at"] as? String == "1970-01-01T00:00:00+00:00")
  }
}
