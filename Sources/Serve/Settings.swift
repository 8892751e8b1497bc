import Foundation
import Store
import Sync

/// How `tsuku serve` runs: where it listens, its bounds, and the home it serves.
public struct ServeSettings: Sendable {
  public var host: String
  public var port: Int
  public var jsonLog = false
  public var maxConnections = 1024
  public var maxHeadBytes = 16384
  /// Seconds a request head may take once its first byte arrived.
  public var requestTimeout: Double = 10
  /// Seconds a kept-alive connection may wait for its next request.
  public var idleTimeout: Double = 60
  public var threads = ProcessInfo.processInfo.activeProcessorCount
  public var offline = false
  public var home: Home
  public var policy: CachePolicy
  public var env: [String: String]

  public init(
    listen: String, allowRemote: Bool, home: Home, policy: CachePolicy, env: [String: String]
  ) throws {
    (host, port) = try Self.parseListen(listen)
    if !allowRemote && !Self.isLoopback(host) {
      throw TsukuError(
        .usage, "--listen \(listen) is not a loopback address: add --allow-remote to serve other machines")
    }
    self.home = home
    self.policy = policy
    self.env = env
  }

  /// "127.0.0.1:8080", "localhost:0", "[::1]:8080".
  static func parseListen(_ s: String) throws -> (String, Int) {
    let bad = TsukuError(.usage, "invalid --listen '\(s)': expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    var host: Substring
    let portText: Substring
    if s.hasPrefix("[") {
      guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else { throw bad }
      host = s[s.index(after: s.startIndex)..<close]
      portText = s[s.index(close, offsetBy: 2)...]
    } else {
      guard let colon = s.lastIndex(of: ":") else { throw bad }
      host = s[..<colon]
      portText = s[s.index(after: colon)...]
      if host.contains(":") { throw bad }
    }
    guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { throw bad }
    if host == "localhost" { host = "127.0.0.1" }
    return (String(host), port)
  }

  static func isLoopback(_ host: String) -> Bool {
    if host == "::1" { return true }
    let parts = host.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
  }
}
