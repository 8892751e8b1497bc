import ArgumentParser

extension TsukuDev {
  /// Placeholder: replaced by the publish scan report.
  struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not built yet.")
  }
}
