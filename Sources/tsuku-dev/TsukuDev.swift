import ArgumentParser
import Foundation

/// The project's own maintenance commands, for `tools/` and the tests: product logic that a
/// script would otherwise copy (the publish validation rules, the built-in critical set). Not
/// installed with `tsuku`; run it with `swift run tsuku-dev`.
@main
struct TsukuDev: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tsuku-dev",
    abstract: "Maintenance commands of the tsuku recipe store's own tools (not for users).",
    subcommands: [Scan.self, GenEmbedded.self])
}
