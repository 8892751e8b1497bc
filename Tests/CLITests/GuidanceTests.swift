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
}
