import ArgumentParser
import Foundation
import Store
import Sync

extension TsukuDev {
  /// Runs publish's validation over input folders without stopping at the first bad file, and
  /// prints, as JSON, every file publish would refuse (with its one-line reason) and every file
  /// it keeps: what `tools/replay-corpus` filters each snapshot of the real registry with, so
  /// the rules live only in the publish scan.
  struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Report every file 'tsuku registry publish' would refuse, as JSON.",
      discussion: """
        The folders are read as 'registry publish' reads them. Prints one JSON object: \
        'refused' (path and reason of each refused file), 'accepted' (each file kept), and the \
        counts 'recipes', 'critical', 'golden', 'skipped' (files that are neither recipes nor \
        golden files). Exit 0 whatever is refused; 64 for a folder that does not exist.
        """)
    @Option(help: "Community recipes folder.") var recipes: String?
    @Option(help: "Critical recipes folder.") var critical: String?
    @Option(help: "Golden files folder.") var golden: String?

    func validate() throws {
      if recipes == nil && critical == nil && golden == nil {
        throw ValidationError("give --recipes, --critical and/or --golden")
      }
    }

    /// The printed report.
    struct Report: Encodable {
      var recipes: Int
      var critical: Int
      var golden: Int
      var skipped: Int
      var refused: [PublishScan.Refusal]
      var accepted: [String]
    }

    func run() throws {
      let scan: PublishScan
      do {
        scan = try Publisher.scan(
          PublishInput(recipes: recipes, critical: critical, golden: golden), mode: .reportRefusals)
      } catch let e as TsukuError {
        FileHandle.standardError.write(Data("error: \(e.detailed)\n".utf8))
        throw ExitCode(e.code.exitCode)
      }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
      let report = Report(
        recipes: scan.entries.count, critical: scan.criticalCount, golden: scan.goldenCount,
        skipped: scan.skipped.count, refused: scan.refused, accepted: scan.accepted)
      FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
    }
  }
}
