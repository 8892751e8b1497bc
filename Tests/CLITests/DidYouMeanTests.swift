import Foundation
import Store
import Sync
import Testing

import TestSupport

/// "Did you mean": a mistyped command or recipe name is answered with the nearest real one,
/// by edit distance over the commands and over the cached index's names.
@Suite struct DidYouMeanTests {
  @Test func aMistypedCommandNamesTheNearestOne() throws {
    let w = try CLIWorld()
    let cases: [([String], String)] = [
      (["shwo", "fzf"], "error: unknown command 'shwo'; did you mean 'show'?\n"),
      (["udpate-registry"], "error: unknown command 'udpate-registry'; did you mean 'update-registry'?\n"),
      (["serach", "fuzzy"], "error: unknown command 'serach'; did you mean 'search'?\n"),
      (["cache", "claer"], "error: unknown command 'claer' for 'tsuku cache'; did you mean 'clear'?\n"),
      (["registry", "publsh", "--to", "x"], "error: unknown command 'publsh' for 'tsuku registry'; did you mean 'publish'?\n"),
      (["frobnicate"], "error: unknown command 'frobnicate'; 'tsuku --help' lists the commands\n"),
    ]
    for (args, expected) in cases {
      let r = try runTsuku(args, env: w.env, binary: w.bin)
      #expect(r.status == 64, "\(args)")
      #expect(r.stderr == expected, "\(args): \(r.stderr)")
      #expect(r.stdout.isEmpty)
    }
    // Real commands and their own errors are untouched.
    let r = try w.run("show")
    #expect(r.status == 64 && !r.stderr.contains("unknown command"), "\(r.stderr)")
    #expect(try w.run("help", "show").status == 0)
  }

  @Test func aMistypedRecipeNameNamesTheNearestCachedOne() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let cases = [("fzff", "fzf"), ("ripgrpe", "ripgrep"), ("rigprep", "ripgrep"), ("jqq", "jq")]
    for (typed, near) in cases {
      for args in [["show", typed], ["show", typed, "--offline"], ["info", typed]] {
        let r = try runTsuku(args, env: w.env, binary: w.bin)
        #expect(r.status == 3, "\(args): \(r.stderr)")
        #expect(
          r.stderr.hasPrefix("error: no recipe named '\(typed)' in the registry (index version 1); did you mean '\(near)'?"),
          "\(args): \(r.stderr)")
      }
    }
    // Nothing near: the message stays as it was.
    let r = try w.run("show", "zzzzzzzzzz")
    #expect(r.stderr == "error: no recipe named 'zzzzzzzzzz' in the registry (index version 1)\n", "\(r.stderr)")
  }

  @Test func theSearchIsBoundedAndPicksTheNearest() throws {
    #expect(Suggest.closest(to: "shwo", in: ["search", "show", "plan"]) == "show")
    #expect(Suggest.closest(to: "fzf", in: ["fzf"]) == nil, "an exact name is no suggestion")
    #expect(Suggest.closest(to: "ab", in: ["abc"]) == "abc")
    #expect(Suggest.closest(to: "a", in: ["b"]) == nil, "one letter: no edit allowed")
    #expect(Suggest.closest(to: "kubectl", in: ["kubectx", "kubecolor", "kubectl-neat"]) == "kubectx")
    // 200,000 names: the nearest is found among them (lengths far off are never compared).
    var names = (0..<200_000).map { "tool-\($0)-\(String(repeating: "x", count: $0 % 17))" }
    names.append("terraform")
    #expect(Suggest.closest(to: "terrafrom", in: names) == "terraform")
  }
}
