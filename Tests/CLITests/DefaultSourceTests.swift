import Foundation
import Sync
import Testing

import TestSupport

/// The default source depends on where the binary runs, not where it was built: a copy of the
/// built binary outside any checkout has none and says how to choose a registry.
@Suite struct DefaultSourceTests {
  /// The built binary copied into a temporary folder, and a home beside it.
  final class Installed: @unchecked Sendable {
    let dir: TemporaryDirectory
    let bin: String
    var env: [String: String] { ["TSUKU_HOME": dir.file("home"), "HOME": dir.path] }

    init() throws {
      dir = try TemporaryDirectory(prefix: "tsuku-installed")
      bin = dir.file("bin/tsuku")
      try FileManager.default.createDirectory(atPath: dir.file("bin"), withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: tsukuBinary(checkout: checkout), toPath: bin)
    }

    func run(_ args: String..., env extra: [String: String] = [:]) throws -> CommandResult {
      try runTsuku(args, env: env.merging(extra) { $1 }, binary: bin)
    }
  }

  @Test(arguments: [["update-registry"], ["init"]])
  func aCopyOutsideTheCheckoutSaysHowToChooseARegistry(_ args: [String]) throws {
    let i = try Installed()
    let r = try runTsuku(args, env: i.env, binary: i.bin)
    #expect(r.status == 5, "\(r.stderr)")
    #expect(r.stderr == "error: \(DefaultRegistry.noSourceMessage)\n")
    #expect(r.stderr.contains("tsuku init --source URL") && r.stderr.contains("TSUKU_SOURCES"))
  }

  /// A read that needs a source says how to choose one; what needs none (the critical set
  /// built into the binary) is still served.
  @Test func aCopyOutsideTheCheckoutServesTheCriticalSetAndSaysHowToChooseARegistryForTheRest() throws {
    let i = try Installed()
    var r = try i.run("show", "fzf")
    #expect(r.status == 5, "\(r.stderr)")
    #expect(r.stderr == "error: no source reachable and no cached copy of 'fzf'\n  \(DefaultRegistry.noSourceMessage)\n")
    r = try i.run("show", "cmake")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/embedded/cmake.toml"))
  }

  @Test func aCopyOutsideTheCheckoutUsesTsukuDefaultSource() throws {
    let i = try Installed()
    let source = "git+file://\(checkout)?dir=registry-index/store"
    var r = try i.run("update-registry", env: ["TSUKU_DEFAULT_SOURCE": source])
    #expect(r.status == 0, "\(r.stderr)")
    r = try i.run("show", "fzf", "--offline")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
  }
}
