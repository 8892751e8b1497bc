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
}
