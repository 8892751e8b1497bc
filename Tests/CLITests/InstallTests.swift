import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `tools/install` and `tools/release` over the built binary: a man page for every command
/// the binary defines (rendered by man without warnings), completion scripts that complete
/// recipe names from the cached index, and a release archive whose sum file checks.
@Suite(.serialized) struct InstallTests {
  /// Runs a script of the checkout; returns its status and output.
  func script(_ args: [String], env extra: [String: String] = [:]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: checkout)
    p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
  }

  /// Every command path the binary defines: ["tsuku"], ["tsuku", "show"], ...
  func commandPaths(_ bin: String) throws -> [[String]] {
    let r = try runTsuku(["--experimental-dump-help"], env: [:], binary: bin)
    let root = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    var out = [[String]]()
    func walk(_ cmd: [String: Any], _ path: [String]) {
      out.append(path)
      for c in cmd["subcommands"] as? [[String: Any]] ?? [] {
        guard let name = c["commandName"] as? String, name != "help", c["shouldDisplay"] as? Bool != false else {
          continue
        }
        walk(c, path + [name])
      }
    }
    walk(try #require(root["command"] as? [String: Any]), ["tsuku"])
    return out
  }

  @Test func installWritesAManPageForEveryCommandAndCompletions() throws {
    let w = try CLIWorld()
    let prefix = w.dir.file("prefix")
    let binDir = URL(fileURLWithPath: w.bin).deletingLastPathComponent().path
    let (status, out) = try script(["tools/install", "--prefix", prefix, "--from-build", binDir, "--no-strip"])
    try #require(status == 0, "\(out)")
    let installed = prefix + "/bin/tsuku"
    #expect(try runTsuku(["--version"], env: [:], binary: installed).status == 0)

    let paths = try commandPaths(installed)
    #expect(paths.count > 20)
    #expect(paths.contains(["tsuku", "registry", "publish"]))
    let fm = FileManager.default
    for path in paths {
      let page = prefix + "/share/man/man1/" + path.joined(separator: "-") + ".1"
      #expect(fm.fileExists(atPath: page), "no man page for '\(path.joined(separator: " "))'")
    }
    let pages = try fm.contentsOfDirectory(atPath: prefix + "/share/man/man1")
    #expect(pages.count == paths.count, "pages without a command: \(pages.sorted())")

    // `man` renders them without a roff warning.
    if fm.isExecutableFile(atPath: "/usr/bin/groff") {
      for page in pages {
        let (s, text) = try script(["groff", "-man", "-ww", "-z", prefix + "/share/man/man1/" + page])
        #expect(s == 0 && text.isEmpty, "\(page): \(text)")
      }
    }
    if fm.isExecutableFile(atPath: "/usr/bin/man") {
      let (s, text) = try script(["man", "-l", prefix + "/share/man/man1/tsuku-show.1"], env: ["MANWIDTH": "80"])
      #expect(s == 0)
      #expect(text.contains("tsuku-show") && text.contains("--offline"))
    }
    for f in [
      "share/bash-completion/completions/tsuku", "share/zsh/site-functions/_tsuku",
      "share/fish/vendor_completions.d/tsuku.fish",
    ] {
      let text = try String(contentsOfFile: prefix + "/" + f, encoding: .utf8)
      #expect(text.contains("---completion show"), "\(f) does not complete recipe names")
    }
  }

  /// The bash script, sourced into bash, completes `tsuku info rip` with `ripgrep` from the
  /// cached index, and `tsuku show fz` with `fzf`, offline.
  @Test func bashCompletesRecipeNamesFromTheCache() throws {
    let w = try CLIWorld()
    #expect(try w.run("update-registry").status == 0)
    let binDir = URL(fileURLWithPath: w.bin).deletingLastPathComponent().path
    func complete(_ line: String) throws -> [String] {
      let program = """
        source <("\(w.bin)" --generate-completion-script bash)
        COMP_LINE="$1"; read -ra COMP_WORDS <<< "$1"; COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_POINT=${#COMP_LINE}
        _tsuku; printf '%s\\n' "${COMPREPLY[@]}"
        """
      let (status, out) = try script(
        ["bash", "-c", program, "_", line],
        env: ["TSUKU_HOME": w.dir.file("home"), "PATH": binDir + ":/usr/bin:/bin", "TSUKU_SOURCES": "off"])
      #expect(status == 0, "\(out)")
      return out.split(separator: "\n").map(String.init)
    }
    #expect(try complete("tsuku info rip") == ["ripgrep"])
    #expect(try complete("tsuku show fz") == ["fzf"])
    #expect(try complete("tsuku show zzzz").isEmpty)
  }

  @Test func releaseArchiveHoldsEverythingAndItsSumChecks() throws {
    let w = try CLIWorld()
    let binDir = URL(fileURLWithPath: w.bin).deletingLastPathComponent().path
    let dist = w.dir.file("dist")
    let (status, out) = try script(["tools/release", "--out", dist, "--from-build", binDir])
    try #require(status == 0, "\(out)")
    let (sumStatus, sumOut) = try script(["bash", "-c", "cd '\(dist)' && sha256sum -c SHA256SUMS"])
    #expect(sumStatus == 0, "\(sumOut)")
    let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: dist).first { $0.hasSuffix(".tar.gz") })
    let (listStatus, listing) = try script(["tar", "tzf", dist + "/" + archive])
    #expect(listStatus == 0)
    let top = String(archive.dropLast(7))
    for member in [
      "bin/tsuku", "share/man/man1/tsuku.1", "share/man/man1/tsuku-show.1", "share/bash-completion/completions/tsuku",
      "share/zsh/site-functions/_tsuku", "share/fish/vendor_completions.d/tsuku.fish", "README.md",
      "licences/registry-index-sample.LICENSE.tsuku", "licences/swift-argument-parser.LICENSE.txt",
      "licences/swift-runtime-and-foundation.LICENSE.txt", "licences/openssl.copyright",
    ] {
      #expect(listing.contains(top + "/" + member + "\n"), "the archive lacks \(member)")
    }
    // A tampered archive fails its sum.
    let path = dist + "/" + archive
    var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    bytes[bytes.count / 2] ^= 0xff
    try bytes.write(to: URL(fileURLWithPath: path))
    #expect(try script(["bash", "-c", "cd '\(dist)' && sha256sum -c SHA256SUMS"]).0 != 0)
  }
}
