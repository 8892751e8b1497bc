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
    4   refused for integrity or trust (bad signature, hash mismatch, rollback, expired, revoked)
    5   unavailable (no source answered and nothing usable is cached)
    64  bad arguments
  """

struct Tsuku: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tsuku",
    abstract: "Verified recipes and golden files from a signed, content-addressed registry.",
    discussion: """
      Every recipe and golden file is a blob named by its SHA-256, pinned by an index signed
      with Ed25519 keys that the root of trust names. Every read is verified.

      Environment:
        TSUKU_HOME          all state (default ~/.tsuku)
        TSUKU_SOURCES       sources for this command, comma separated ('off' for none)
        TSUKU_REGISTRY_URL  a single source (when TSUKU_SOURCES is not set)

      \(exitCodesHelp)
      """,
    subcommands: [
      Init.self, UpdateRegistry.self, Show.self, Plan.self, Info.self, List.self, Search.self, Verify.self, Audit.self,
      Registry.self,
    ])
}

@main
enum Main {
  static func main() {
    do {
      var command = try Tsuku.parseAsRoot()
      try command.run()
    } catch let e as TsukuError {
      Output.error(e)
      exit(e.code.exitCode)
    } catch {
      Tsuku.exit(withError: error)
    }
  }
}

/// Writing to stdout and stderr.
enum Output {
  static func data(_ d: Data) { FileHandle.standardOutput.write(d) }
  static func line(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
  static func warn(_ s: String) { FileHandle.standardError.write(Data(("warning: " + s + "\n").utf8)) }
  static func info(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
  static func error(_ e: TsukuError) { FileHandle.standardError.write(Data(("error: " + e.detailed + "\n").utf8)) }

  static func json<T: Encodable>(_ v: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    data((try? e.encode(v)) ?? Data("null".utf8))
    line("")
  }
}

/// Options every reading command shares.
struct ClientOptions: ParsableArguments {
  @Flag(help: "Use only the cache: contact no source.")
  var offline = false

  func client() throws -> Client {
    let env = ProcessInfo.processInfo.environment
    let home = Home.fromEnvironment(env)
    let sources = SourceList.resolve(env: env, config: try home.readConfig(), offline: offline)
    return Client(home: home, sources: sources, now: Date(), warn: Output.warn)
  }
}
