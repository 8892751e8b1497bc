// Replays a corpus through the same entry point, for coverage reports (tools/fuzz).
import Foundation

@main
enum CoverageMain {
  static func main() {
    var argc: Int32 = 0
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
    _ = withUnsafeMutablePointer(to: &argv) { fuzzInitialize(&argc, UnsafeMutablePointer(OpaquePointer($0))) }
    for dir in CommandLine.arguments.dropFirst() {
      for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        if let d = FileManager.default.contents(atPath: dir + "/" + name) { runOne(d) }
      }
    }
  }
}
