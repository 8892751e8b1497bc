import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The command line guides: `plan` defaults to this machine's platform and falls back from a
/// family platform to the generic one, saying which it chose.
@Suite(.serialized) struct GuidanceTests {
  @Test func planDefaultsToThisMachineAndFallsBackFromAFamilyPlatform() throws {
    let w = try CLIWorld()
    #expect(try w.run("update-registry").status == 0)
    // fzf has only generic linux golden files in the sample.
    var r = try w.run("plan", "fzf", "--platform", "linux-debian-amd64")
    #expect(r.status == 0)
    #expect(r.stderr.contains("no golden file of 'fzf' for linux-debian-amd64; using linux-amd64"))
    let generic = try w.run("plan", "fzf", "--platform", "linux-amd64")
    #expect(generic.stderr.isEmpty)
    #expect(r.stdout == generic.stdout)
    let plan = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect((plan["platform"] as? [String: Any])?["arch"] as? String == "amd64")

    // No --platform: this machine's, said on stderr.
    r = try w.run("plan", "cmake")
    #expect(r.status == 0)
    #expect(r.stderr.contains(HostPlatform.current()) || r.stderr.contains("using linux-"))
    // No golden file on any candidate: the platforms it has are listed.
    r = try w.run("plan", "fzf", "--platform", "windows-amd64")
    #expect(r.status == 3)
    #expect(r.stderr.contains("platforms: "))
    // The tool version has its own option; --version is the program's.
    r = try w.run("plan", "fzf", "--platform", "linux-amd64", "--tool-version", "0.0.0-nosuch")
    #expect(r.status == 3)
    #expect(r.stderr.contains("versions: "))
  }

  /// Colour only on a terminal or with --color always, never with NO_COLOR; -q silences
  /// notes, -v says which home and sources a command uses; a bad --color is exit 64.
  @Test func terminalConventions() throws {
    let w = try CLIWorld()
    #expect(try w.run("update-registry").status == 0)
    var r = try w.run("show", "nosuch")
    #expect(r.stderr.hasPrefix("error: no recipe named 'nosuch'"))  // not a terminal: no colour
    r = try w.run("show", "nosuch", "--color", "always")
    #expect(r.stderr.hasPrefix("\u{1b}[1;31merror:\u{1b}[0m no recipe named 'nosuch'"))
    r = try w.run("--color=never", "show", "nosuch", env: ["NO_COLOR": "1"])
    #expect(r.stderr.hasPrefix("error: "))
    r = try w.run("show", "fzf", "--color", "purple")
    #expect(r.status == 64)
    #expect(r.stderr.contains("invalid --color value 'purple'"))

    r = try w.run("plan", "fzf", "--platform", "linux-debian-amd64", "-q")
    #expect(r.status == 0)
    #expect(r.stderr.isEmpty)
    r = try w.run("-v", "show", "fzf")
    #expect(r.status == 0)
    #expect(r.stderr.contains("tsuku: home \(w.dir.file("home"))"))
    #expect(r.stderr.contains("sources: "))
    #expect(r.stderr.contains("tsuku: exit 0 after "))
    #expect(try w.run("-q", "-v", "show", "fzf").status == 64)
    // A global flag after '--' is an argument like any other.
    r = try w.run("search", "--", "-q")
    #expect(r.status == 3)
  }

  /// `search` prints the same aligned columns as `list`.
  @Test func searchOutputIsAligned() throws {
    let w = try CLIWorld()
    #expect(try w.run("update-registry").status == 0)
    let r = try w.run("search", "lib")
    #expect(r.status == 0)
    let lines = r.out.split(separator: "\n").map(String.init)
    try #require(lines.count >= 2)
    let columns = Set(lines.map { line -> Int in
      let name = line.prefix { $0 != " " }
      return name.count + line.dropFirst(name.count).prefix { $0 == " " }.count
    })
    #expect(columns.count == 1, "\(lines)")
  }

  /// Errors say what to do next and name no Swift type: a public key given as the root, a
  /// sourceless update through TSUKU_SOURCES=off or --offline.
  @Test func errorsSayWhatToDoWithoutInternals() throws {
    let w = try CLIWorld()
    #expect(try w.run("registry", "keygen", "--out", w.dir.file("root.key")).status == 0)
    var r = try w.run("init", "--root", w.dir.file("root.key.pub"))
    #expect(r.status == 64)
    #expect(r.stderr.contains("is a public key, not a root document: pass the registry's root.json"))
    try Data(#"{"signed":{"type":"ed25519"},"signatures":[]}"#.utf8).write(to: URL(fileURLWithPath: w.dir.file("odd.json")))
    r = try w.run("init", "--root", w.dir.file("odd.json"))
    #expect(r.status != 0)
    #expect(!r.stderr.contains("Cannot initialize") && !r.stderr.contains("DocumentType"), "\(r.stderr)")
    r = try w.run("update-registry", env: ["TSUKU_SOURCES": "off"])
    #expect(r.status == 5)
    #expect(r.stderr.contains("TSUKU_SOURCES is 'off'; unset it"))
    r = try w.run("update-registry", "--offline")
    #expect(r.status == 5)
    #expect(r.stderr.contains("run it without --offline"))
  }

  /// "N other files skipped" can be listed: -v names each, --json has them all.
  @Test func skippedFilesCanBeListed() throws {
    let w = try CLIWorld()
    try w.setUp()
    let recipes = w.dir.file("recipes")
    try FileManager.default.copyItem(atPath: checkout + "/registry-index/source/recipes", toPath: recipes)
    try Data("notes\n".utf8).write(to: URL(fileURLWithPath: recipes + "/README.md"))
    let common = [
      "registry", "publish", "--recipes", recipes, "--critical", checkout + "/registry-index/source/embedded",
      "--golden", checkout + "/registry-index/source/golden", "--key", w.k("index"), "--to", w.store,
    ]
    var r = try runTsuku(common + ["--dry-run"], env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    r = try runTsuku(common, env: w.env, binary: w.bin)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("1 other files skipped (-v lists them)"))
    r = try runTsuku(["-v"] + common + ["--dry-run"], env: w.env, binary: w.bin)
    #expect(r.stderr.contains("tsuku: skipped: ") && r.stderr.contains("README.md"), "\(r.stderr)")
    r = try runTsuku(common + ["--dry-run", "--json"], env: w.env, binary: w.bin)
    let o = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    let files = try #require(o["skipped_files"] as? [String])
    #expect(files.count == 1 && files[0].hasSuffix("README.md"))
  }

  /// keygen, registry init, sign, resign, revoke and rotate-root print JSON with --json, so a
  /// script reads a key id or a version without parsing text.
  @Test func maintainerCommandsPrintJSON() throws {
    let w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    func json(_ args: [String]) throws -> [String: Any] {
      let r = try runTsuku(args, env: w.env, binary: w.bin)
      #expect(r.status == 0, "\(args.prefix(3)): \(r.stderr)")
      return try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "\(r.out)")
    }
    for role in ["root", "index", "revocation", "root2"] {
      let k = try json(["registry", "keygen", "--out", w.k(role), "--json"])
      #expect((k["key_id"] as? String)?.count == 64)
      #expect(k["public_key"] as? String == w.k(role) + ".pub")
    }
    let initOut = try json([
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"), "--json",
    ])
    #expect(initOut["root_version"] as? Int == 1)
    #expect((initOut["targets"] as? [[String: Any]])?.first?["url"] as? String == w.store)
    let src = checkout + "/registry-index/source"
    let pub = try runTsuku(
      ["registry", "publish", "--recipes", src + "/recipes", "--critical", src + "/embedded", "--golden", src + "/golden",
       "--key", w.k("index"), "--to", w.store], env: w.env, binary: w.bin)
    #expect(pub.status == 0, "\(pub.stderr)")
    let resign = try json(["registry", "resign", "--key", w.k("index"), "--to", w.store, "--json"])
    #expect(resign["index_version"] as? Int == 2)
    let staged = w.dir.file("staged.json")
    _ = try json(["registry", "resign", "--key", w.k("index"), "--to", w.store, "--stage", staged, "--json"])
    let sign = try json(["registry", "sign", "--staged", staged, "--key", w.k("index"), "--json"])
    #expect(sign["complete"] as? Bool == true)
    #expect((sign["sections"] as? [[String: Any]])?.first?["required"] as? Int == 1)
    let hash = SHA256.hash(FileManager.default.contents(atPath: src + "/recipes/f/fzf.toml")!).hex
    let revoke = try json([
      "registry", "revoke", hash, "--reason", "test", "--key", w.k("revocation"), "--to", w.store, "--json",
    ])
    #expect(revoke["revocation_version"] as? Int == 1)
    #expect(revoke["hash"] as? String == hash)
    let rotate = try json([
      "registry", "rotate-root", "--to", w.store, "--root-key", w.k("root2") + ".pub", "--sign", w.k("root"),
      "--sign", w.k("root2"), "--json",
    ])
    #expect(rotate["root_version"] as? Int == 2)
    #expect(rotate["copied_only"] as? Bool == false)
  }

  /// init and cache clear print JSON with --json.
  @Test func initAndCacheClearPrintJSON() throws {
    let w = try CLIWorld()
    try w.setUp()
    var r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store, "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let i = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(i["root_version"] as? Int == 1)
    #expect(i["sources"] as? [String] == [w.store])
    #expect(i["replaced_root"] as? Bool == false)
    #expect(r.stderr.isEmpty)
    #expect(try w.run("update-registry").status == 0)
    r = try w.run("cache", "clear", "--json")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try JSONSerialization.jsonObject(with: r.stdout) is [String: Any])
  }

  /// The global flags work with `serve` too: `tsuku` takes them, the server never sees them.
  @Test func serveTakesTheGlobalFlags() throws {
    let w = try CLIWorld()
    #expect(try w.run("update-registry").status == 0)
    let r = try runTsuku(
      ["serve", "-q", "--listen", "127.0.0.1:0", "--color", "never"], env: w.env, binary: w.bin, killAfter: 3)
    #expect(r.out.contains("listening on http://127.0.0.1:"), "\(r.stderr)")
    #expect(!r.stderr.contains("error:"), "\(r.stderr)")
  }
}
