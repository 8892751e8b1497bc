import ArgumentParser

extension TsukuDev {
  /// Placeholder: replaced by the generator of the built-in critical set.
  struct GenEmbedded: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gen-embedded", abstract: "Not built yet.")
  }
}
