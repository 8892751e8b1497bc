// Replays a corpus through the same entry point as the fuzzer, for coverage reports
// (tools/fuzz): `tsuku-fuzz-cov DIR...` runs every file of every DIR once.
import FuzzTargets
import Foundation

@main
enum CoverageMain {
  static func main() {
    fuzzInitialize()
    for dir in CommandLine.arguments.dropFirst() {
      for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        if let d = FileManager.default.contents(atPath: dir + "/" + name) { runOne(d) }
      }
    }
  }
}
