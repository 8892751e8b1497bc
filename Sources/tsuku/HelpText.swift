import Store
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// What every help page ends with: a usage line wrapped at the terminal's width (the parser
/// prints it on one line of up to 240 characters) and an EXAMPLES section, from the table
/// below. `tools/gen-man` reads the same pages, so the man pages carry the same examples.
enum HelpText {
  /// Examples by command path ("" for `tsuku` itself). A test checks every command has some.
  static let examples: [String: [String]] = [
    "": [
      "tsuku update-registry", "tsuku show fzf", "tsuku plan cmake", "tsuku search fuzzy",
      "tsuku registry publish --recipes recipes --key index.key --to \"$BUCKET\"",
    ],
    "init": [
      "tsuku init --root root.json --source \"$BUCKET\"",
      "tsuku init --root root.json --source https://cdn.example.org/registry --source \"$GIT\"",
    ],
    "update-registry": ["tsuku update-registry", "tsuku update-registry --dry-run", "tsuku update-registry --json"],
    "diff": ["tsuku diff", "tsuku diff 41 42", "tsuku diff 41 --json"],
    "doctor": ["tsuku doctor", "tsuku doctor --json", "TSUKU_SOURCES=https://cdn.example.org/registry tsuku doctor --timeout 5"],
    "show": ["tsuku show fzf", "tsuku show fzf --offline > fzf.toml"],
    "plan": [
      "tsuku plan cmake", "tsuku plan cmake --platform linux-debian-amd64",
      "tsuku plan go --platform darwin-arm64 --tool-version 1.22.0",
    ],
    "info": ["tsuku info fzf", "tsuku info fzf --json", "HASH=$(tsuku info fzf --hash)"],
    "list": ["tsuku list", "tsuku list --critical", "tsuku list --json"],
    "search": ["tsuku search fuzzy", "tsuku search lib --json"],
    "verify": ["tsuku verify", "tsuku verify --json"],
    "cache": ["tsuku cache info", "tsuku cache cleanup --dry-run", "tsuku cache clear"],
    "cache info": ["tsuku cache info", "tsuku cache info --json"],
    "cache cleanup": ["tsuku cache cleanup --dry-run", "tsuku cache cleanup --max-age 30d"],
    "cache clear": ["tsuku cache clear", "tsuku cache clear --trust", "tsuku cache clear --json"],
    "audit": [
      "tsuku audit --since 2026-11-01T00:00:00Z", "tsuku audit --name fzf",
      "tsuku audit --hash \"$HASH\" --json",
    ],
    "metrics": ["tsuku metrics", "TSUKU_METRICS_FILE=/var/lib/node_exporter/tsuku.prom tsuku update-registry"],
    "serve": [
      "tsuku serve --listen 127.0.0.1:8080",
      "tsuku serve --listen 127.0.0.1:8080 --log-format json 2>>/var/log/tsuku-serve.log",
      "tsuku serve --listen 0.0.0.0:8080 --allow-remote --max-connections 256",
    ],
    "registry": [
      "tsuku registry keygen --out keys/index.key",
      "tsuku registry publish --recipes recipes --critical embedded --golden golden --key keys/index.key --to \"$BUCKET\"",
      "tsuku registry status --to \"$BUCKET\" --to \"$GIT\"",
    ],
    "registry keygen": [
      "tsuku registry keygen --out keys/index.key", "tsuku registry keygen --out keys/root.key --encrypt",
      "KEY=$(tsuku registry keygen --out keys/ci.key --json | jq -r .key_id)",
    ],
    "registry init": [
      "tsuku registry init --to \"$BUCKET\" --root-key root.key.pub --index-key index.key.pub --revocation-key revocation.key.pub --sign root.key",
      "tsuku registry init --to \"$BUCKET\" --to \"$GIT\" --root-key a.pub --root-key b.pub --root-threshold 2 --index-key index.key.pub --revocation-key revocation.key.pub --stage root1.json --sign a.key",
    ],
    "registry publish": [
      "tsuku registry publish --recipes recipes --critical embedded --golden golden --key index.key --to \"$BUCKET\" --dry-run",
      "tsuku registry publish --recipes recipes --critical embedded --golden golden --key index.key --to \"$BUCKET\" --to \"$GIT\"",
      "tsuku registry publish --staged index-7.json --to \"$BUCKET\"",
    ],
    "registry revoke": [
      "HASH=$(tsuku info fzf --hash)",
      "tsuku registry revoke \"$HASH\" --reason \"upstream tarball replaced\" --key revocation.key --to \"$BUCKET\"",
      "tsuku registry revoke --key-id \"$KEY_ID\" --reason \"index key leaked\" --key revocation.key --to \"$BUCKET\"",
    ],
    "registry resign": [
      "tsuku registry resign --key index.key --to \"$BUCKET\"",
      "tsuku registry resign --key index.key --revocation-key revocation.key --to \"$BUCKET\" --to /srv/mirror",
    ],
    "registry rotate-root": [
      "tsuku registry rotate-root --to \"$BUCKET\" --index-key new-index.key.pub --sign root.key",
      "tsuku registry rotate-root --to \"$BUCKET\" --root-key new-root.key.pub --sign root.key --sign new-root.key",
    ],
    "registry sign": [
      "tsuku registry sign --staged index-7.json --key my-index.key",
      "tsuku registry sign --staged root-2.json --key my-root.key --json",
    ],
    "registry health": [
      "tsuku registry health --source https://cdn.example.org/registry",
      "tsuku registry health --source \"$BUCKET\" --root root.json --json",
    ],
    "registry status": [
      "tsuku registry status --to \"$BUCKET\" --to \"$GIT\" --to /srv/mirror",
      "tsuku registry status --to \"$BUCKET\" --json",
    ],
    "registry mirror": [
      "tsuku registry mirror --from \"$BUCKET\" --to \"$GIT\"",
      "tsuku registry mirror --from https://cdn.example.org/registry --to /media/usb/registry --dry-run",
    ],
    "registry log": [
      "tsuku registry log --from \"$BUCKET\" --name fzf",
      "tsuku registry log --from \"$BUCKET\" --hash \"$HASH\" --json",
    ],
    "registry witness": [
      "tsuku registry witness keygen --name witness.example.org --out witness.key",
      "tsuku registry witness cosign --log \"$BUCKET\" --key witness.key",
    ],
    "registry witness cosign": [
      "tsuku registry witness cosign --log \"$BUCKET\" --key witness.key",
      "tsuku registry witness cosign --log https://cdn.example.org/registry --key witness.key --print",
    ],
    "registry witness keygen": ["tsuku registry witness keygen --name witness.example.org --out witness.key"],
    "registry drift": [
      "tsuku registry drift --recipes recipes --testdata testdata/recipes",
      "tsuku registry drift --recipes recipes --testdata testdata/recipes --json",
    ],
    "registry size-report": [
      "tsuku registry size-report", "tsuku registry size-report --source \"$BUCKET\" --top 20 --json",
    ],
    "registry validate": [
      "tsuku registry validate --source \"$BUCKET\" --fallback \"$GIT\"",
      "tsuku registry validate --source \"$BUCKET\" --status-md status.md --issue-md issue.md --json",
    ],
    "registry export": [
      "tsuku registry export --to /srv/tsuku-registry --golden",
      "tsuku registry export --check /srv/tsuku-registry --json",
    ],
    "registry gc": [
      "tsuku registry gc --to \"$BUCKET\" --dry-run",
      "tsuku registry gc --to \"$BUCKET\" --keep-index-versions 10 --min-age 7d",
    ],
  ]

  /// Store URLs, for every option that asks for a source or a store.
  static let storeURLs = """
    A store is a directory (/srv/registry or file:///srv/registry), a git repository \
    (git+file:///srv/registry.git?dir=store#main), an S3-compatible bucket \
    (s3://BUCKET/PREFIX?endpoint=https://ACCOUNT.r2.cloudflarestorage.com for R2, \
    ?endpoint=http://127.0.0.1:8333 for SeaweedFS or MinIO, ?region=us-east-1 for AWS S3) or, \
    to read only, an https://HOST/PREFIX mirror or CDN. In the examples, $BUCKET and $GIT \
    stand for such URLs.
    """

  /// The terminal's width, as the argument parser measures it: the window of stdout, else
  /// COLUMNS, else 80.
  static func width() -> Int {
    var w = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
    if let c = ProcessEnvironment.current["COLUMNS"].flatMap(Int.init), c > 0 { return c }
    return 80
  }

  /// A help page with its usage wrapped at `width` and its examples appended.
  static func polish(_ text: String, width: Int = width()) -> String {
    var lines = text.components(separatedBy: "\n")
    guard let u = lines.firstIndex(where: { $0.hasPrefix("USAGE: ") }) else { return text }
    let usage = String(lines[u].dropFirst(7))
    let path = commandPath(usage)
    lines[u] = wrap(usage, width: width, first: "USAGE: ", indent: "         ")
    var out = lines.joined(separator: "\n")
    while out.hasSuffix("\n") { out.removeLast() }
    // `registry export --to` names a folder in the Go client's layout, not a store.
    let asksForStore =
      path != ["registry", "export"]
      && ["--to ", "--source ", "--from ", "--log ", "--fallback "].contains { usage.contains($0) }
    if asksForStore {
      out += "\n\nSTORE URLS:\n" + paragraph(storeURLs, width: width, indent: "  ")
    }
    if let ex = examples[path.joined(separator: " ")], !ex.isEmpty {
      out += "\n\nEXAMPLES:\n" + ex.map { example($0, width: width) }.joined(separator: "\n")
    }
    return out + "\n"
  }

  /// A command line indented by two, continued with ` \\` on lines of four when it is wider
  /// than `width`; never broken inside quotes.
  static func example(_ command: String, width: Int) -> String {
    var words = [String]()
    var current = ""
    var quote: Character?
    for ch in command {
      if ch == " " && quote == nil {
        if !current.isEmpty { words.append(current) }
        current = ""
        continue
      }
      if ch == "\"" || ch == "'" { quote = quote == ch ? nil : (quote ?? ch) }
      current.append(ch)
    }
    if !current.isEmpty { words.append(current) }
    var lines = [String]()
    var line = "  "
    for w in words {
      if line.count > 4 && line.count + 1 + w.count + 2 > width - 1 {
        lines.append(line + " \\")
        line = "      " + w
      } else {
        line += (line.hasSuffix(" ") ? "" : " ") + w
      }
    }
    lines.append(line)
    return lines.joined(separator: "\n")
  }

  /// `text` wrapped at `width` between words, every line indented.
  static func paragraph(_ text: String, width: Int, indent: String) -> String {
    var lines = [String]()
    var line = indent
    for word in text.split(separator: " ") {
      if line.count > indent.count && line.count + 1 + word.count > width {
        lines.append(line)
        line = indent
      }
      line += (line.count > indent.count ? " " : "") + word
    }
    lines.append(line)
    return lines.joined(separator: "\n")
  }

  /// `tsuku registry revoke [<hash>] …` → ["registry", "revoke"].
  static func commandPath(_ usage: String) -> [String] {
    var words = usage.split(separator: " ").map(String.init)
    guard words.first == "tsuku" else { return [] }
    words.removeFirst()
    return Array(words.prefix { w in w.first.map { $0.isLetter || $0.isNumber } ?? false })
  }

  /// Wraps a usage line between its bracketed groups, never inside one.
  static func wrap(_ usage: String, width: Int, first: String, indent: String) -> String {
    var groups = [String]()
    var current = ""
    var depth = 0
    for ch in usage {
      if ch == " " && depth == 0 {
        if !current.isEmpty { groups.append(current) }
        current = ""
        continue
      }
      if ch == "[" || ch == "<" { depth += 1 }
      if ch == "]" || ch == ">" { depth = max(0, depth - 1) }
      current.append(ch)
    }
    if !current.isEmpty { groups.append(current) }
    var lines = [String]()
    var line = first
    var lineHasGroup = false
    for g in groups {
      if lineHasGroup && line.count + 1 + g.count > width {
        lines.append(line)
        line = indent + g
      } else {
        line += (lineHasGroup ? " " : "") + g
      }
      lineHasGroup = true
    }
    lines.append(line)
    return lines.joined(separator: "\n")
  }
}
