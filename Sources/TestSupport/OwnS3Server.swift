import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A SeaweedFS of a test's own, started with `tools/s3-server` on free ports, that the test
/// may stop (an outage) without touching the shared `S3TestServer`. It is stopped when the
/// value is released, and in any case when the test process exits (`--watch`).
public final class OwnS3Server: @unchecked Sendable {
  public let endpoint: String
  private let dir: TemporaryDirectory
  private let script: String
  /// The server's folder (data, log, PID), one per attempt.
  private let serverDir: String
  public private(set) var running = true

  /// Starts one; throws `S3TestServer.S3Unavailable` when SeaweedFS cannot be installed.
  public init() throws {
    script = S3TestServer.checkoutRoot() + "/tools/s3-server"
    dir = try TemporaryDirectory(prefix: "tsuku-own-s3")
    var last = ""
    for _ in 0..<8 {
      let port = Int.random(in: 40001...60000)
      if !LoopbackServer.portsFree(port...port + 9) { continue }
      let srv = dir.file("srv-\(port)")
      let (status, out, err) = try Self.run(script, ["start", srv, String(port), "--watch", String(getpid())], in: dir.path)
      if status == 3 { throw S3TestServer.S3Unavailable() }
      if status == 0, let line = out.split(separator: "\n").first(where: { $0.hasPrefix("TSUKU_TEST_S3_ENDPOINT=") }) {
        endpoint = String(line.dropFirst("TSUKU_TEST_S3_ENDPOINT=".count))
        serverDir = srv
        return
      }
      last = "exit \(status) on port \(port): " + (err + out).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    throw TsukuError(.unavailable, "cannot start a SeaweedFS of the test's own: \(last.isEmpty ? "no free ports" : last)")
  }

  deinit { stop() }

  /// Stops the server (its PID from its folder); idempotent.
  public func stop() {
    guard running else { return }
    running = false
    _ = try? Self.run(script, ["stop", serverDir], in: dir.path)
  }

  /// A fresh bucket.
  public func makeBucket(prefix: String = "own") throws -> String {
    let name = "\(prefix)-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    try S3Store(S3Location(bucket: name, endpoint: endpoint), credentials: S3TestServer.admin, transport: CurlTransport())
      .createBucket()
    return name
  }

  private static func run(_ executable: String, _ arguments: [String], in dir: String) throws -> (Int32, String, String) {
    try S3TestServer.run(executable, arguments, in: dir, name: "cmd")
  }
}
