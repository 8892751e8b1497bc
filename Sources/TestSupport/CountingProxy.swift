import Foundation
import Store

/// `tools/counting-proxy` in front of a server: forwards every request unchanged and counts
/// them, so request counts are measured at the server side, not inside the client.
public final class CountingProxy: @unchecked Sendable {
  public let port: Int
  private let process: Process

  /// Starts a proxy to `upstream` (an `http://127.0.0.1:PORT` endpoint) on a free port.
  public init(upstream: String) throws {
    guard let upPort = URL(string: upstream)?.port else {
      throw TsukuError(.usage, "counting proxy: no port in '\(upstream)'")
    }
    let script = S3TestServer.checkoutRoot() + "/tools/counting-proxy"
    var lastError = ""
    for _ in 0..<8 {
      let port = Int.random(in: 41000...59000)
      guard LoopbackServer.portsFree(port...port) else { continue }
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      p.arguments = ["python3", script, String(upPort), String(port)]
      let out = Pipe()
      p.standardOutput = out
      p.standardError = FileHandle.nullDevice
      p.standardInput = FileHandle.nullDevice
      try p.run()
      let line = out.fileHandleForReading.availableLine()
      if line == "listening" {
        self.port = port
        self.process = p
        return
      }
      p.terminate()
      lastError = line
    }
    throw TsukuError(.unavailable, "cannot start tools/counting-proxy: \(lastError)")
  }

  deinit {
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }

  public var endpoint: String { "http://127.0.0.1:\(port)" }

  private func control(_ path: String) throws -> String {
    let r = try runTsuku(["-s", "--max-time", "10", endpoint + path], env: [:], binary: "/usr/bin/curl")
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Requests forwarded since the start or the last `reset`.
  public func count() throws -> Int { Int(try control("/__count")) ?? -1 }
  public func reset() throws { _ = try control("/__reset") }
  /// After `n` more requests, every request is answered by closing the connection.
  public func failAfter(_ n: Int) throws { _ = try control("/__fail_after/\(n)") }
}

extension FileHandle {
  /// Reads one line (without its newline), blocking.
  func availableLine() -> String {
    var bytes = [UInt8]()
    while true {
      let d = readData(ofLength: 1)
      if d.isEmpty || d.first == UInt8(ascii: "\n") { break }
      bytes.append(d.first!)
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
