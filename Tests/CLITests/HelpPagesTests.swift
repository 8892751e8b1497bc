import Foundation
import Testing

import TestSupport

/// Every help page reads well at 80 columns in a pipe: no line wraps in the middle of a
/// sentence (a line of one or two words followed by more text), none is wider than the
/// screen, every page has examples, and every option an example uses exists.
@Suite struct HelpPagesTests {
  struct Page {
    var path: [String]
    var text: String
  }

  /// Every command path with its long options, from the parser's description.
  func commands() throws -> [[String]: Set<String>] {
    let r = try runTsuku(["--experimental-dump-help"], env: [:], binary: tsukuBinary(checkout: checkout))
    let root = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    var out = [[String]: Set<String>]()
    func walk(_ cmd: [String: Any], _ path: [String]) {
      var flags = Set<String>()
      for a in cmd["arguments"] as? [[String: Any]] ?? [] {
        for n in a["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
          if let name = n["name"] as? String { flags.insert("--" + name) }
        }
      }
      out[path] = flags
      for c in cmd["subcommands"] as? [[String: Any]] ?? [] {
        guard let name = c["commandName"] as? String, name != "help" else { continue }
        walk(c, path + [name])
      }
    }
    walk(try #require(root["command"] as? [String: Any]), [])
    return out
  }

  func pages() throws -> [Page] {
    try commands().keys.sorted { $0.joined(separator: " ") < $1.joined(separator: " ") }.map { path in
      let r = try runTsuku(path + ["--help"], env: ["COLUMNS": "80"], binary: tsukuBinary(checkout: checkout))
      #expect(r.status == 0, "tsuku \(path.joined(separator: " ")) --help: \(r.stderr)")
      return Page(path: path, text: r.out)
    }
  }

  @Test func helpPagesReadWellAtEightyColumns() throws {
    var problems = [String]()
    for page in try pages() {
      let name = (["tsuku"] + page.path).joined(separator: " ")
      let lines = page.text.components(separatedBy: "\n")
      for (i, line) in lines.enumerated() {
        if line.count > 80 { problems.append("\(name): a line of \(line.count) columns: \(line)") }
        guard i + 1 < lines.count else { continue }
        let words = line.split(separator: " ")
        let next = lines[i + 1]
        let orphan =
          (1...2).contains(words.count) && !line.hasPrefix(" ") && !next.trimmingCharacters(in: .whitespaces).isEmpty
          && !line.hasSuffix(":") && !line.hasSuffix(".")
        if orphan { problems.append("\(name): '\(line)' is a fragment of the sentence that goes on with '\(next)'") }
      }
      if !page.text.contains("\nEXAMPLES:\n") { problems.append("\(name): no EXAMPLES") }
    }
    #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
  }

  @Test func everyExampleUsesOptionsTheCommandHas() throws {
    let cmds = try commands()
    var problems = [String]()
    var checked = 0
    for page in try pages() {
      guard let start = page.text.range(of: "\nEXAMPLES:\n") else { continue }
      // Continuation lines (` \`) join the example they continue.
      let joined = page.text[start.upperBound...].replacingOccurrences(of: " \\\n", with: " ")
      for line in joined.split(separator: "\n") where line.hasPrefix("  ") {
        var words = line.split(separator: " ").map(String.init)
        guard let at = words.firstIndex(of: "tsuku") else { continue }
        words = Array(words[(at + 1)...])
        var path = [String]()
        while let w = words.first, cmds[path + [w]] != nil {
          path.append(w)
          words.removeFirst()
        }
        let flags = cmds[path] ?? []
        for w in words where w.hasPrefix("--") {
          let flag = String(w.prefix { $0 != "=" && $0 != ")" })
          checked += 1
          if !flags.contains(flag) && !["--quiet", "--verbose", "--color"].contains(flag) {
            problems.append("example of 'tsuku \(page.path.joined(separator: " "))': tsuku \(path.joined(separator: " ")) has no \(flag)")
          }
        }
      }
    }
    #expect(checked > 50)
    #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
  }
}
