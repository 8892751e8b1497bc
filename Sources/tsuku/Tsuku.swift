import ArgumentParser
import Foundation
import Store
import Sync

/// The exit codes, shared by every command and printed in `--help`.
let exitCodesHelp = """
  Exit codes:
    0   success
    1   other failure (I/O, disk full, internal; a publish that lost a race)
    2   finished with findings (degraded health, validation failures)
    3   not found (every source answered that it has no such thing)
    4   refused for integrity or trust (bad signature, hash mismatch,
        rollback, expired, revoked)
    5   unavailable (no source answered and nothing usable is cached)
    64  bad arguments
  """

struct Tsuku: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tsuku",
    abstract: "Verified recipes and golden files from a signed, content-addressed registry.",
    discussion: """
      Every recipe and golden file is a blob named by its SHA-256, pinned by an index signed \
      with Ed25519 keys that the root of trust names. Every read is verified.

      Global options (before or after the command):
        -q, --quiet                   no notes on stderr (warnings and errors stay)
        -v, --verbose                 say which home and sources a command uses, show
                                      progress on waits, and time the command
        --color auto|always|never     colour 'error:' and 'warning:' (auto: on a
                                      terminal, unless NO_COLOR is set or TERM is
                                      dumb)

      Environment:
        NO_COLOR                      set: no colour (unless --color always)
        TSUKU_HOME                    all state (default ~/.tsuku)
        TSUKU_SOURCES                 sources for this command, like GOPROXY: 'a,b|c'
                                      ('off': none); after ',' the next is tried only
                                      when one lacks the thing, after '|' on any
                                      failure
        TSUKU_REGISTRY_URL            a single source (when TSUKU_SOURCES is not set)
        TSUKU_DEFAULT_SOURCE          the source used when nothing is configured
        TSUKU_RECIPE_CACHE_TTL        ask the sources again after this long (24h;
                                      5m..7d)
        TSUKU_RECIPE_CACHE_MAX_STALE  serve a verified stale cache this long past the
                                      TTL (7d)
        TSUKU_RECIPE_CACHE_SIZE_LIMIT evict least recently used blobs beyond this
                                       (500MB)
        TSUKU_REVOCATION_TTL          within the TTL, check for revocations after
                                      this long (1h; 1m..24h): one conditional
                                      index.json request
        TSUKU_REVOCATION_DEADLINE     that check's time limit (2s; 0.1s..60s)
        TSUKU_API_TIMEOUT             seconds all of a command's HTTP requests may
                                      take together, retries included (30; at most
                                      86400)
        TSUKU_CONNECT_TIMEOUT         seconds a connection may take to open (5; at
                                      most 600)
        TSUKU_PROGRESS                1: say on stderr what a wait of over a second
                                      is waiting for, 0: never (default: when stderr
                                      is a terminal)
        TSUKU_CA_BUNDLE               a CA bundle for https sources
        TSUKU_S3_ACCESS_KEY_ID, TSUKU_S3_SECRET_ACCESS_KEY
                                       bucket credentials (else AWS_*)
        TSUKU_S3_SESSION_TOKEN        their session token, for temporary ones (else
                                      AWS_SESSION_TOKEN)
        AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN
                                       no key: exchange the OIDC token in the file
                                      for the role's credentials at STS
                                      (AWS_ROLE_SESSION_NAME, AWS_ENDPOINT_URL_STS)
        TSUKU_GIT_HISTORY_DAYS        how far back a git source serves blobs that
                                      left its tip, counted from its newest commit
                                      (90; 0: all history)
        TSUKU_METRICS_FILE            write 'tsuku metrics' there after every
                                      command, failed ones too (atomically; for
                                      node_exporter's textfile collector)

      \(exitCodesHelp)
      """,
    version: tsukuVersion,
    subcommands: [
      Init.self, UpdateRegistry.self, Diff.self, Show.self, Plan.self, Info.self, List.self, Search.self, Verify.self, Cache.self,
      Doctor.self,
      Audit.self, MetricsCommand.self,
      Registry.self, ServeCommand.self,
    ])
}

/// The version `tsuku --version` prints.
let tsukuVersion = PublishedBy.toolVersion

@main
enum Main {
  static func main() {
    let args: [String]
    do {
      args = try Terminal.takeGlobalFlags(CommandLine.arguments)
    } catch let e as TsukuError {
      Output.error(e)
      exit(e.code.exitCode)
    } catch {
      exit(1)
    }
    // `tsuku --version` answers before anything else is set up (what ArgumentParser prints).
    if args.count == 2, args[1] == "--version" {
      Output.line(tsukuVersion)
      finish(0)
    }
    // The hot path, `tsuku show NAME`, skips the argument parser's reflection (about a third
    // of the command's instructions); anything else, flags included, goes through it.
    if args.count == 3, args[1] == "show", !args[2].hasPrefix("-") {
      do {
        Output.data(try ClientOptions.makeClient(offline: false, force: false).recipe(args[2]))
        finish(0)
      } catch let e as TsukuError {
        Output.error(e)
        finish(e.code.exitCode)
      } catch {
        Output.error(TsukuError.converting(error))
        finish(1)
      }
    }
    ProcessMemory.returnLargeBuffers()
    do {
      var command = try leafCommand(args) ?? Tsuku.parseAsRoot(Array(args.dropFirst()))
      try command.run()
    } catch let e as TsukuError {
      Output.error(e)
      finish(e.code.exitCode)
    } catch let e where [NSCocoaErrorDomain, NSPOSIXErrorDomain].contains((e as NSError).domain) {
      // A Foundation file error: one line with the path and the system's reason, exit 1.
      Output.error(TsukuError.converting(e))
      finish(1)
    } catch {
      // Argument errors: one lower-case line (and the usage), exit 64; --help and --version: 0.
      let code = Tsuku.exitCode(for: error)
      if code != .success, let unknown = UnknownCommand.message(args) {
        Output.errorLine(unknown)
        finish(ExitCode.validationFailure.rawValue)
      }
      let text = Tsuku.fullMessage(for: error)
      if text.isEmpty {
        // A bare ExitCode: the command already said what it had to.
      } else if code == .success {
        // Help pages get a wrapped usage line, the store URL schemes and examples.
        Output.data(Data((text.contains("USAGE: ") ? HelpText.polish(text) : text + "\n").utf8))
      } else {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let first = lines.first, first.hasPrefix("Error: ") {
          lines[0] = Terminal.paint("error:", .red) + " " + first.dropFirst(7)
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
      }
      finish(code.rawValue)
    }
    finish(0)
  }

  /// The reading commands that have no subcommands, by name.
  static let leaves: [String: ParsableCommand.Type] = [
    "update-registry": Tsuku.UpdateRegistry.self, "info": Tsuku.Info.self, "list": Tsuku.List.self,
    "search": Tsuku.Search.self, "plan": Tsuku.Plan.self, "verify": Tsuku.Verify.self, "diff": Tsuku.Diff.self,
    "doctor": Tsuku.Doctor.self, "show": Tsuku.Show.self,
  ]

  /// `tsuku COMMAND ARGS` for one of `leaves`, parsed by that command alone: the root's parse
  /// reflects over the whole command tree, which was a third of a no-op `update-registry`.
  /// Nil (the root then parses, and gives its own message or help) for a help request, a
  /// request of the parser's own (completion scripts, dumps), or anything the command alone
  /// does not take.
  static func leafCommand(_ args: [String]) -> ParsableCommand? {
    guard args.count >= 2, let leaf = leaves[args[1]] else { return nil }
    let rest = Array(args.dropFirst(2))
    if rest.contains(where: { $0 == "-h" || $0 == "--help" || $0 == "-help" || $0.hasPrefix("--experimental") || $0.hasPrefix("--generate-completion") || $0.hasPrefix("---") }) {
      return nil
    }
    return try? leaf.parseAsRoot(rest)
  }

  /// Ends the process: first what the command's clients recorded is written (audit, access
  /// log, metrics), whether the command succeeded or failed, then the metrics textfile.
  static func finish(_ status: Int32) -> Never {
    CommandRecording.flush()
    if Terminal.verbose {
      Output.verbose("exit \(status) after \(Int((Date().timeIntervalSince(Terminal.started) * 1000).rounded())) ms")
    }
    MetricsTextfile.writeIfRequested()
    exit(status)
  }
}

/// Writing to stdout and stderr.
enum Output {
  static func data(_ d: Data) { FileHandle.standardOutput.write(d) }
  static func line(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
  static func warn(_ s: String) { FileHandle.standardError.write(Data((Terminal.paint("warning:", .yellow) + " " + s + "\n").utf8)) }
  /// A note on stderr; `-q` silences it.
  static func info(_ s: String) {
    if !Terminal.quiet { FileHandle.standardError.write(Data((s + "\n").utf8)) }
  }
  /// A detail on stderr shown only with `-v`.
  /// (The text is made only with `-v`: it is on the start of every command.)
  static func verbose(_ s: @autoclosure () -> String) {
    if Terminal.verbose { FileHandle.standardError.write(Data((Terminal.paint("tsuku:", .dim) + " " + s() + "\n").utf8)) }
  }
  static func error(_ e: TsukuError) { errorLine(e.detailed) }
  static func errorLine(_ s: String) { FileHandle.standardError.write(Data((Terminal.paint("error:", .red) + " " + s + "\n").utf8)) }

  static func json<T: Encodable>(_ v: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    data((try? e.encode(v)) ?? Data("null".utf8))
    line("")
  }
}

/// Options every reading command shares.
struct ClientOptions: ParsableArguments {
  @Flag(help: "Use only the cache and the built-in critical set: contact no source.")
  var offline = false
  @Flag(help: "Refresh from the sources whatever the cache's TTL says.")
  var force = false

  func client() throws -> Client { try Self.makeClient(offline: offline, force: force) }

  static func makeClient(offline: Bool, force: Bool) throws -> Client {
    let env = ProcessEnvironment.current
    let home = Home.fromEnvironment(env)
    let chain = try SourceList.resolve(env: env, config: try home.readConfig(), offline: offline)
    _ = try GitHistoryDays.fromEnvironment(env)  // a bad value is exit 64 up front, not a failed source
    Output.verbose("home \(home.path); sources: \(offline ? "none (--offline)" : chain.urls.isEmpty ? "none" : chain.urls.joined(separator: ", "))")
    return CommandRecording.track(
      Client(home: home, chain: chain, policy: try CachePolicy.fromEnvironment(env), now: Date(), force: force, warn: Output.warn))
  }
}

/// The clients this command made. What they recorded is written once, when the command ends
/// (`Main.finish`, reached by every command, failed ones too).
enum CommandRecording {
  nonisolated(unsafe) private static var clients = [Client]()

  static func track(_ c: Client) -> Client {
    clients.append(c)
    return c
  }

  static func flush() {
    for c in clients { c.flush() }
    clients.removeAll()
  }
}

/// The terminal conventions every command shares: `-q`, `-v` and `--color`, taken out of the
/// arguments before they are parsed, so they work before or after the command's name.
enum Terminal {
  nonisolated(unsafe) static var quiet = false
  nonisolated(unsafe) static var verbose = false
  nonisolated(unsafe) static var color = false
  static let started = Date()

  enum Paint: String {
    case red = "1;31"
    case yellow = "1;33"
    case dim = "2"
  }

  /// `text` in colour when colour is on (stderr is a terminal, or `--color always`).
  static func paint(_ text: String, _ p: Paint) -> String {
    color ? "\u{1b}[\(p.rawValue)m\(text)\u{1b}[0m" : text
  }

  /// The arguments without the global flags (up to a `--`); sets the conventions.
  static func takeGlobalFlags(_ args: [String]) throws -> [String] {
    _ = started
    // getenv, not ProcessInfo's dictionary: building that costs a tenth of `tsuku --version`.
    func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
    var mode = "auto"
    var out = [String]()
    var i = 0
    var passthrough = false
    while i < args.count {
      let a = args[i]
      defer { i += 1 }
      if i == 0 || passthrough {
        out.append(a)
        continue
      }
      switch a {
      case "--":
        passthrough = true
        out.append(a)
      case "-q", "--quiet": quiet = true
      case "-v", "--verbose": verbose = true
      case "--color", "--colour":
        guard i + 1 < args.count else { throw TsukuError(.usage, "--color needs a value: auto, always or never") }
        i += 1
        mode = args[i]
      default:
        if a.hasPrefix("--color=") || a.hasPrefix("--colour=") {
          mode = String(a[a.index(after: a.firstIndex(of: "=")!)...])
        } else {
          out.append(a)
        }
      }
    }
    switch mode {
    case "auto":
      let noColor = !(env("NO_COLOR") ?? "").isEmpty
      color = !noColor && isatty(2) == 1 && env("TERM") != "dumb"
    case "always": color = true
    case "never": color = false
    default: throw TsukuError(.usage, "invalid --color value '\(mode)': expected auto, always or never")
    }
    if quiet && verbose { throw TsukuError(.usage, "-q and -v together: choose one") }
    // Progress on waits follows the conventions unless TSUKU_PROGRESS says otherwise.
    if env("TSUKU_PROGRESS") == nil {
      if quiet { setenv("TSUKU_PROGRESS", "0", 1) }
      if verbose { setenv("TSUKU_PROGRESS", "1", 1) }
    }
    return out
  }
}

/// `tsuku shwo fzf`: a word where a command group expects one of its commands is named as an
/// unknown command, with the nearest command's name when one is near (`Suggest`).
enum UnknownCommand {
  /// The message for `args` (the whole command line), or nil when every word that names a
  /// command is one (the parser's own message then stands).
  static func message(_ args: [String]) -> String? {
    var command: ParsableCommand.Type = Tsuku.self
    var path = ["tsuku"]
    for word in args.dropFirst() {
      let subcommands = command.configuration.subcommands
      guard !word.hasPrefix("-"), !subcommands.isEmpty, command.configuration.defaultSubcommand == nil else { return nil }
      if let next = subcommands.first(where: { $0._commandName == word || $0.configuration.aliases.contains(word) }) {
        command = next
        path.append(word)
        continue
      }
      if word == "help" { return nil }
      let names = subcommands.map { $0._commandName } + (path.count == 1 ? ["help"] : [])
      var m = "unknown command '\(word)'" + (path.count > 1 ? " for '\(path.joined(separator: " "))'" : "")
      if let near = Suggest.closest(to: word, in: names) {
        m += "; did you mean '\(near)'?"
      } else {
        m += "; '\(path.joined(separator: " ")) --help' lists the commands"
      }
      return m
    }
    return nil
  }
}
