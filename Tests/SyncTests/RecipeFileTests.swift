import Foundation
import Store
import Testing

@testable import Sync

/// Recipe and golden-file validation, with small fixtures shaped like the real registry's.
@Suite struct RecipeFileTests {
  let fzf = """
    [metadata]
    name = "fzf"
    description = "Command-line fuzzy finder"
    homepage = "https://github.com/junegunn/fzf"
    version_format = "semver"

    [[steps]]
    action = "github_archive"
    repo = "junegunn/fzf"

    [[steps]]
    action = "install_binaries"
    binaries = ["fzf"]

    [verify]
    command = "fzf --version"
    pattern = "{version}"
    """

  func recipe(_ text: String, _ fileName: String) throws -> RecipeInfo {
    try RecipeFile.validate(Data(text.utf8), fileName: fileName)
  }

  /// The message of the usage error a recipe must raise.
  func recipeError(_ text: String, _ fileName: String) -> String? {
    let error = #expect(throws: TsukuError.self) { try recipe(text, fileName) }
    #expect(error?.code == .usage)
    return error?.message
  }

  func golden(_ json: String, _ path: String) throws -> GoldenInfo {
    try GoldenFile.validate(Data(json.utf8), path: path)
  }

  func goldenError(_ json: String, _ path: String) -> String? {
    let error = #expect(throws: TsukuError.self) { try golden(json, path) }
    #expect(error?.code == .usage)
    return error?.message
  }

  // MARK: Recipes

  @Test func validToolRecipeGivesItsMetadata() throws {
    #expect(
      try recipe(fzf, "fzf.toml")
        == RecipeInfo(
          name: "fzf", description: "Command-line fuzzy finder", homepage: "https://github.com/junegunn/fzf",
          type: "tool", dependencies: [], runtimeDependencies: []))
  }

  @Test func dependenciesAndTypeAreRead() throws {
    let text = """
      [metadata]
      name = "libfoo"
      type = "library"
      dependencies = ["zlib", "openssl"]
      runtime_dependencies = ["gcc-libs"]

      [[steps]]
      action = "homebrew"
      """
    let info = try recipe(text, "libfoo.toml")
    #expect(info.type == "library")
    #expect(info.dependencies == ["zlib", "openssl"])
    #expect(info.runtimeDependencies == ["gcc-libs"])
    #expect(info.description == "")
    #expect(info.homepage == "")
  }

  @Test func emptyTypeMeansTool() throws {
    let text = fzf.replacingOccurrences(of: "version_format", with: "type = \"\"\nversion_format")
    #expect(try recipe(text, "fzf.toml").type == "tool")
  }

  @Test func nameMustMatchTheFileName() {
    let text = fzf.replacingOccurrences(of: "name = \"fzf\"", with: "name = \"fz\"")
    #expect(recipeError(text, "fzf.toml") == "fzf.toml: metadata.name 'fz' does not match the file name 'fzf'")
  }

  @Test func tomlErrorsNameTheFileAndLine() {
    #expect(
      recipeError("[metadata]\nname = \"x\"\ncommand \"x --version\"\n", "x.toml")
        == "x.toml: line 3: expected '=' after key")
    #expect(recipeError(fzf + "\n[verify]\ncommand = \"again\"\n", "fzf.toml")?.hasPrefix("fzf.toml: line 18: ") == true)
  }

  @Test func recipeWithoutStepsIsRejected() {
    let text = "[metadata]\nname = \"x\"\n\n[verify]\ncommand = \"x --version\"\n"
    #expect(recipeError(text, "x.toml") == "x.toml: no [[steps]] entries")
  }

  @Test func stepWithoutActionIsRejected() {
    let text = fzf.replacingOccurrences(of: "action = \"install_binaries\"", with: "actions = \"install_binaries\"")
    #expect(recipeError(text, "fzf.toml") == "fzf.toml: steps entry 2 has no string 'action'")
    let numeric = fzf.replacingOccurrences(of: "action = \"github_archive\"", with: "action = 1")
    #expect(recipeError(numeric, "fzf.toml") == "fzf.toml: steps entry 1 has no string 'action'")
  }

  @Test func toolWithoutVerifyCommandIsRejected() {
    let noVerify = String(fzf[..<fzf.range(of: "[verify]")!.lowerBound])
    #expect(recipeError(noVerify, "fzf.toml") == "fzf.toml: missing [verify] table")
    let empty = fzf.replacingOccurrences(of: "command = \"fzf --version\"", with: "command = \"  \"")
    #expect(recipeError(empty, "fzf.toml") == "fzf.toml: verify.command is missing or empty")
    let patternOnly = fzf.replacingOccurrences(of: "command = \"fzf --version\"\n", with: "")
    #expect(recipeError(patternOnly, "fzf.toml") == "fzf.toml: verify.command is missing or empty")
  }

  @Test func libraryWithoutVerifyIsAccepted() throws {
    let text = "[metadata]\nname = \"zlib\"\ntype = \"library\"\n\n[[steps]]\naction = \"homebrew\"\n"
    #expect(try recipe(text, "zlib.toml").type == "library")
  }

  @Test func otherMistakesAreRejected() {
    #expect(recipeError("[[steps]]\naction = \"x\"\n", "x.toml") == "x.toml: missing [metadata] table")
    #expect(recipeError("metadata = 1\n", "x.toml") == "x.toml: 'metadata' is not a table")
    #expect(recipeError("[metadata]\ndescription = \"d\"\n", "x.toml") == "x.toml: metadata.name is missing")
    let badType = fzf.replacingOccurrences(of: "version_format", with: "type = \"plugin\"\nversion_format")
    #expect(recipeError(badType, "fzf.toml") == "fzf.toml: metadata.type 'plugin' is not 'tool' or 'library'")
    let badDeps = fzf.replacingOccurrences(of: "version_format", with: "dependencies = [\"a\", 1]\nversion_format")
    #expect(recipeError(badDeps, "fzf.toml") == "fzf.toml: metadata.dependencies is not an array of strings")
    let badDescription = fzf.replacingOccurrences(of: "description = \"Command-line fuzzy finder\"", with: "description = 5")
    #expect(recipeError(badDescription, "fzf.toml") == "fzf.toml: metadata.description is not a string")
  }

  @Test func invalidUTF8IsRejected() {
    var data = Data(fzf.utf8)
    data.insert(0xFF, at: 30)
    let error = #expect(throws: TsukuError.self) { try RecipeFile.validate(data, fileName: "fzf.toml") }
    #expect(error?.message == "fzf.toml: not valid utf-8")
  }

  @Test func controlCharactersStayOutOfMessages() {
    let text = fzf.replacingOccurrences(of: "name = \"fzf\"", with: "name = \"a\\nb\"")
    let message = recipeError(text, "fzf.toml")
    #expect(message?.contains("\n") == false)
    #expect(message?.contains("'a\\nb'") == true)
  }

  // MARK: Golden files

  func plan(tool: String, version: String, platform: String?) -> String {
    let p = platform.map { #", "platform": \#($0)"# } ?? ""
    return #"{"format_version": 5, "tool": "\#(tool)", "version": "\#(version)"\#(p), "steps": []}"#
  }

  @Test func hyphenatedVersionsAreKeptWhole() throws {
    let json = plan(tool: "ca-certificates", version: "2025-12-02", platform: #"{"os": "linux", "arch": "amd64"}"#)
    let info = try golden(json, "plans/embedded/ca-certificates/v2025-12-02-linux-amd64.json")
    #expect(info == GoldenInfo(tool: "ca-certificates", version: "2025-12-02", platform: "linux-amd64"))
  }

  @Test func linuxFamilyIsPartOfThePlatform() throws {
    let json = plan(
      tool: "foo", version: "1.15.0-alpha20251203",
      platform: #"{"os": "linux", "arch": "amd64", "linux_family": "debian"}"#)
    let info = try golden(json, "f/foo/v1.15.0-alpha20251203-linux-debian-amd64.json")
    #expect(info.version == "1.15.0-alpha20251203")
    #expect(info.platform == "linux-debian-amd64")
  }

  @Test func theNameDecidesWhenThePlanDisagreesAndANoteSaysSo() throws {
    // Real cases from the corpus: a plan without linux_family, and one whose version says "dev".
    let noFamily = plan(tool: "rust", version: "1.93.1", platform: #"{"os": "linux", "arch": "amd64"}"#)
    let r = try golden(noFamily, "embedded/rust/v1.93.1-linux-debian-amd64.json")
    #expect(r.platform == "linux-debian-amd64")
    #expect(
      r.note
        == "embedded/rust/v1.93.1-linux-debian-amd64.json: the name says '1.93.1' on 'linux-debian-amd64' but the plan has platform 'linux-amd64'; indexed by its name"
    )
    let dev = plan(tool: "ack", version: "dev", platform: #"{"os": "darwin", "arch": "arm64"}"#)
    let a = try golden(dev, "a/ack/v3.9.0-darwin-arm64.json")
    #expect(a.version == "3.9.0")
    #expect(a.note?.contains("the plan has version 'dev'") == true)
    // A name that does not parse still has to match the plan exactly.
    let odd = plan(tool: "foo", version: "1.0", platform: #"{"os": "plan9", "arch": "amd64"}"#)
    #expect(goldenError(odd, "foo/v2.0-plan9-amd64.json") == "foo/v2.0-plan9-amd64.json: file name 'v2.0-plan9-amd64.json' should be 'v1.0-plan9-amd64.json'")
  }

  @Test func toolMustMatchTheFolder() {
    let json = plan(tool: "fzf", version: "1.0", platform: #"{"os": "linux", "arch": "amd64"}"#)
    #expect(
      goldenError(json, "f/fd/v1.0-linux-amd64.json")
        == "f/fd/v1.0-linux-amd64.json: tool 'fzf' does not match the folder name 'fd'")
  }

  @Test func platformIsReadFromTheRightWhenThePlanHasNone() throws {
    let a = try golden(plan(tool: "ca-certificates", version: "2025-12-02", platform: nil), "ca-certificates/v2025-12-02-linux-amd64.json")
    #expect(a == GoldenInfo(tool: "ca-certificates", version: "2025-12-02", platform: "linux-amd64"))
    let b = try golden(
      plan(tool: "foo", version: "1.15.0-alpha20251203", platform: nil), "foo/v1.15.0-alpha20251203-linux-debian-amd64.json")
    #expect(b.platform == "linux-debian-amd64")
    #expect(b.version == "1.15.0-alpha20251203")
    let c = try golden(plan(tool: "amp", version: "2.7.5-canary.6", platform: "null"), "amp/v2.7.5-canary.6-darwin-arm64.json")
    #expect(c.platform == "darwin-arm64")
    #expect(try golden(plan(tool: "foo", version: "1.0", platform: nil), "foo/v1.1-linux-amd64.json").version == "1.1")
    #expect(goldenError(plan(tool: "foo", version: "1.0", platform: nil), "foo/v1.0-plan9-amd64.json") != nil)
  }

  @Test func malformedGoldenFilesAreRejected() {
    let json = plan(tool: "foo", version: "1.0", platform: #"{"os": "linux", "arch": "amd64"}"#)
    #expect(goldenError(json, "v1.0-linux-amd64.json")?.contains("expected a path ending") == true)
    #expect(goldenError(json, "foo/1.0-linux-amd64.json")?.contains("expected a path ending") == true)
    #expect(goldenError("{not json", "foo/v1.0-linux-amd64.json") == "foo/v1.0-linux-amd64.json: not valid json")
    #expect(goldenError("[1]", "foo/v1.0-linux-amd64.json") == "foo/v1.0-linux-amd64.json: not a json object")
    #expect(goldenError(#"{"tool": "foo"}"#, "foo/v1.0-linux-amd64.json")?.hasSuffix("missing string 'version'") == true)
    let noArch = plan(tool: "foo", version: "1.0", platform: #"{"os": "linux"}"#)
    #expect(goldenError(noArch, "foo/v1.0-linux-amd64.json")?.hasSuffix("missing string 'platform.arch'") == true)
  }
}
