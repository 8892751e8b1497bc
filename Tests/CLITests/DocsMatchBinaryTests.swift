import Foundation
import Testing

import TestSupport

/// docs/cli.md and the binary describe the same command line: every command the binary has
/// has a section (its own, or its group's), every option of a command is named in that
/// section, and every command heading and every option in a section's usage block exists in
/// the binary.
@Suite struct DocsMatchBinaryTests {
  struct Command {
    var path: [String]
    var flags: Set<String>
  }

  /// Every command of the binary with its visible long options (`--json`), from the argument
  /// parser's own description; `--help` and `--version` left out.
  func commands() throws -> [Command] {
    let r = try runTsuku(["--experimental-dump-help"], env: [:], binary: tsukuBinary(checkout: checkout))
    let root = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    var out = [Command]()
    func walk(_ cmd: [String: Any], _ path: [String]) {
      var flags = Set<String>()
      for a in cmd["arguments"] as? [[String: Any]] ?? [] where a["shouldDisplay"] as? Bool != false {
        for n in a["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
          if let name = n["name"] as? String, name != "help", name != "version" { flags.insert("--" + name) }
        }
      }
      out.append(Command(path: path, flags: flags))
      for c in cmd["subcommands"] as? [[String: Any]] ?? [] {
        guard let name = c["commandName"] as? String, name != "help", c["shouldDisplay"] as? Bool != false else {
          continue
        }
        walk(c, path + [name])
      }
    }
    walk(try #require(root["command"] as? [String: Any]), [])
    return out
  }

  /// docs/cli.md's command sections: heading `tsuku a b` → the section's text.
  func sections() throws -> [[String]: String] {
    let text = try String(contentsOfFile: checkout + "/docs/cli.md", encoding: .utf8)
    var out = [[String]: String]()
    var current: [String]?
    var body = ""
    var inFence = false
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.hasPrefix("```") { inFence.toggle() }
      // A heading outside a code block ends the section (a '# comment' in a block does not).
      if line.hasPrefix("#") && !inFence {
        if let c = current { out[c, default: ""] += body }
        current = nil
        body = ""
        if line.hasPrefix("### `tsuku "), let end = line.dropFirst(5).firstIndex(of: "`") {
          let words = line[line.index(line.startIndex, offsetBy: 5)..<end].split(separator: " ").dropFirst()
          current = words.map(String.init)
        }
        continue
      }
      body += line + "\n"
    }
    if let c = current { out[c, default: ""] += body }
    return out
  }

  @Test func everyCommandAndOptionIsDocumented() throws {
    let cmds = try commands()
    let docs = try sections()
    #expect(cmds.count > 20)
    var missing = [String]()
    // A group without options of its own (`tsuku registry`) needs no section: its commands have theirs.
    for c in cmds where !c.path.isEmpty && !(c.flags.isEmpty && cmds.contains { $0.path.count > c.path.count && $0.path.starts(with: c.path) }) {
      // The command's own section, else its group's (`cache clear` lives under `tsuku cache`).
      let owner = (1...c.path.count).reversed().map { Array(c.path.prefix($0)) }.first { docs[$0] != nil }
      guard let owner, let text = docs[owner] else {
        missing.append("no section for 'tsuku \(c.path.joined(separator: " "))'")
        continue
      }
      for f in c.flags.sorted() where !mentions(text, f) {
        missing.append("'tsuku \(c.path.joined(separator: " "))' option \(f) is not in the section 'tsuku \(owner.joined(separator: " "))'")
      }
    }
    #expect(missing.isEmpty, "\(missing.joined(separator: "\n"))")
  }

  @Test func everyDocumentedCommandAndUsageOptionExists() throws {
    let cmds = try commands()
    let byPath = Dictionary(cmds.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    var wrong = [String]()
    for (path, text) in try sections() {
      guard byPath[path] != nil else {
        wrong.append("docs/cli.md has a section for 'tsuku \(path.joined(separator: " "))', which the binary lacks")
        continue
      }
      // The flags of the section's commands (the command and those under it).
      let known = cmds.filter { $0.path.starts(with: path) }.reduce(into: Set<String>()) { $0.formUnion($1.flags) }
      // The usage block: the first fenced block of the section, lines that start with 'tsuku '.
      guard let open = text.range(of: "```") else { continue }
      let rest = text[open.upperBound...]
      guard let close = rest.range(of: "```") else { continue }
      let usage = rest[..<close.lowerBound]
      guard usage.contains("tsuku ") else { continue }
      for token in usage.split(whereSeparator: { " \n[]|<>(),.=`".contains($0) }) where token.hasPrefix("--") {
        let flag = String(token)
        if !known.contains(flag) && !["--help", "--version", "--quiet", "--verbose", "--color"].contains(flag) {
          wrong.append("'tsuku \(path.joined(separator: " "))' usage names \(flag), which the binary does not take")
        }
      }
    }
    #expect(wrong.isEmpty, "\(wrong.sorted().joined(separator: "\n"))")
  }

  /// `--json` is named in the text as itself, not only as the start of a longer option.
  func mentions(_ text: String, _ flag: String) -> Bool {
    var search = text[...]
    while let r = search.range(of: flag) {
      let next = search[r.upperBound...].first
      if next == nil || !(next!.isLetter || next!.isNumber || next! == "-") { return true }
      search = search[r.upperBound...]
    }
    return false
  }
}
