import Foundation
import Store
import Sync
import Testing

import TestSupport

/// The fenced `sh` blocks of SECURITY.md marked `<!-- runbook: NAME -->`, in order.
func runbookBlocks() throws -> [(name: String, script: String)] {
  let text = try String(contentsOfFile: checkout + "/SECURITY.md", encoding: .utf8)
  var out = [(String, String)]()
  var name: String?
  var inBlock = false
  var lines = [String]()
  for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
    if line.hasPrefix("<!-- runbook: ") {
      name = String(line.dropFirst(14).dropLast(4))
    } else if line == "```sh", name != nil {
      inBlock = true
      lines = []
    } else if line == "```", inBlock {
      out.append((name!, lines.joined(separator: "\n")))
      inBlock = false
      name = nil
    } else if inBlock {
      lines.append(String(line))
    }
  }
  return out
}

@Suite struct RunbookTests {
  func runScript(_ w: CLIWorld, _ script: String) throws -> CommandResult {
    var env = w.env
    env["REG"] = w.store
    env["KEYS"] = w.dir.file("keys")
    env["PATH"] = URL(fileURLWithPath: w.bin).deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    return try runTsuku(["-euo", "pipefail", "-c", script], env: env, binary: "/bin/bash")
  }

  @Test func runbookCommandsHaveTheEffectsTheyClaim() throws {
    let blocks = try runbookBlocks()
    #expect(blocks.map(\.name) == ["compromised-hash", "index-key-leak", "repository-compromise"])
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    #expect(try w.run("show", "fzf").status == 0)

    // 1. compromised hash
    var r = try runScript(w, blocks[0].script)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("published revocation list version 1"))
    #expect(r.out.contains("fetch 'fzf'"))
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("'fzf' (sha256 "))
    #expect(r.stderr.contains("is revoked: fzf 0.60 release tarball replaced upstream"))
    r = try w.run("show", "fzf")
    #expect(r.status == 4)
    #expect(r.stderr.contains("revoked"))
    #expect(try w.run("show", "jq").status == 0)

    // 2. index key leak
    r = try runScript(w, blocks[1].script)
    #expect(r.status == 0, "\(r.stderr) \(r.out)")
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try Home(path: w.dir.file("home")).loadTrust()?.0.version == 2)
    #expect(try w.run("show", "jq").status == 0)
    // The leaked key can no longer publish.
    r = try w.run("registry", "resign", "--key", w.k("index"), "--to", w.store)
    #expect(r.status == 64)
    #expect(r.stderr.contains("is not an index key of root version 2"))

    // 3. repository compromise: every online key replaced.
    r = try runScript(w, blocks[2].script)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try Home(path: w.dir.file("home")).loadTrust()?.0.version == 3)
    #expect(try w.run("show", "jq").status == 0)
    #expect(try w.run("show", "fzf").status == 4)
  }
}

/// SECURITY.md's threat model points every claim at a test (`Dir/File:name`); a renamed or
/// removed test would leave a claim pointing at nothing.
@Suite struct ThreatModelTests {
  @Test func everyTestTheThreatModelNamesExists() throws {
    let text = try String(contentsOfFile: checkout + "/SECURITY.md", encoding: .utf8)
    let model = try #require(text.range(of: "## Threat model")).upperBound
    let pattern = try NSRegularExpression(pattern: "`([A-Za-z]+)/([A-Za-z]+):([A-Za-z0-9]+)`")
    let body = String(text[model...])
    let matches = pattern.matches(in: body, range: NSRange(body.startIndex..., in: body))
    #expect(matches.count >= 40, "the threat model names \(matches.count) tests")
    for m in matches {
      let part = { (i: Int) in String(body[Range(m.range(at: i), in: body)!]) }
      let file = "\(checkout)/Tests/\(part(1))/\(part(2)).swift"
      let source = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
      #expect(!source.isEmpty, "SECURITY.md names \(file), which does not exist")
      #expect(source.contains("func \(part(3))("), "SECURITY.md names \(part(3)), which \(file) does not define")
    }
  }
}
