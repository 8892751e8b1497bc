import ArgumentParser
import Foundation
import Store
import Sync

#if canImport(Glibc)
  import Glibc
#endif

extension Tsuku {
  struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "metrics",
      abstract: "Print this home's cumulative metrics in the Prometheus text format.",
      discussion: """
        Every command run with this TSUKU_HOME adds to them ($TSUKU_HOME/metrics.state.*): fetch latency per backend (file, git, s3, http), objects and bytes fetched, fetch errors per backend and error class, cache hits and misses, verification failures by reason and revocation refusals. docs/operations.md lists the names and labels.

        For node_exporter's textfile collector set TSUKU_METRICS_FILE=PATH: after every command, also one that fails, this text is written there atomically (a temporary file in the same folder, renamed into place).
        """)
    @Flag(help: "Print JSON: counters, histograms (bucket bounds in nanoseconds) and the last fetches.")
    var json = false

    func run() throws {
      let state = try Home.fromEnvironment().readMetrics()
      if json { return Output.json(state) }
      Output.data(Data(state.prometheusText().utf8))
    }
  }
}

/// `TSUKU_METRICS_FILE`: the cumulative metrics as a Prometheus textfile, written after every
/// command (nothing is done when the variable is unset).
enum MetricsTextfile {
  static func writeIfRequested() {
    guard let p = getenv("TSUKU_METRICS_FILE"), p.pointee != 0 else { return }
    let path = String(cString: p)
    do {
      let state = try Home.fromEnvironment().readMetrics()
      try writeFileAtomically(Data(state.prometheusText().utf8), to: path, durable: false)
    } catch {
      Output.warn("TSUKU_METRICS_FILE: \(TsukuError.converting(error, "cannot write", path).message)")
    }
  }
}
