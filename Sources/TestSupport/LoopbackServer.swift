import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers from a handler, to test the real transport
/// against real sockets: refusals, hangs, stalls, truncated and endless bodies, keep-alive.
/// Each connection is served on its own thread; `stop()` (or deinit) ends them all.
public final class LoopbackServer: Sendable {
  /// One request as it arrived.
  public struct Request: Sendable {
    public let method: String
    public let path: String
    /// Header names in lower case.
    public let headers: [String: String]
    public let body: Data
    /// Which connection (0, 1, ...) carried it: equal numbers mean a reused connection.
    public let connection: Int
  }

  /// What to do with a request.
  public enum Reply: Sendable {
    /// Answer, keeping the connection open.
    case respond(Int, headers: [(String, String)] = [], body: Data = Data())
    /// Close the connection without a word.
    case close
    /// Never answer (until the server stops).
    case hang
    /// Send headers declaring `declared` bytes and `sent` of them, then go silent.
    case stall(sent: Data, declared: Int)
    /// Send headers declaring `declared` bytes and `sent` of them, then close.
    case truncate(sent: Data, declared: Int)
  }

  public let port: Int
  public var url: String { "http://127.0.0.1:\(port)" }
  private let listener: Int32
  private let state = Mutex(State())
  private let handler: @Sendable (Request) -> Reply
  private let recording: Bool

  private struct State {
    var requests: [Request] = []
    var connections = 0
    var stopped = false
  }

  /// Starts listening on a free port. With `recording` false, `requests` stays empty (a
  /// long-lived proxy would otherwise keep every body it forwarded).
  public init(recording: Bool = true, handler: @escaping @Sendable (Request) -> Reply) throws {
    self.handler = handler
    self.recording = recording
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
        bind(fd, sa, len) == 0 && listen(fd, 64) == 0 && getsockname(fd, sa, &len) == 0
      }
    }
    guard ok else {
      close(fd)
      throw POSIXError(.EADDRINUSE)
    }
    listener = fd
    port = Int(UInt16(bigEndian: addr.sin_port))
    let me = self
    Thread.detachNewThread { me.acceptLoop() }
  }

  deinit { stop() }

  /// Every request so far.
  public var requests: [Request] { state.withLock { $0.requests } }
  /// Connections accepted so far.
  public var connections: Int { state.withLock { $0.connections } }

  public func stop() {
    let first = state.withLock { s in
      defer { s.stopped = true }
      return !s.stopped
    }
    if first {
      shutdown(listener, Int32(SHUT_RDWR))
      close(listener)
    }
  }

  private var stopped: Bool { state.withLock { $0.stopped } }

  private func acceptLoop() {
    while !stopped {
      var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
      if poll(&pfd, 1, 50) <= 0 { continue }
      let c = accept(listener, nil, nil)
      if c < 0 { continue }
      let n = state.withLock { s in
        defer { s.connections += 1 }
        return s.connections
      }
      Thread.detachNewThread { [self] in serve(c, connection: n) }
    }
  }

  private func serve(_ fd: Int32, connection: Int) {
    defer { close(fd) }
    var buffer = Data()
    while !stopped {
      guard let request = readRequest(fd, &buffer, connection: connection) else { return }
      if recording { state.withLock { $0.requests.append(request) } }
      switch handler(request) {
      case .respond(let status, let headers, let body):
        let head = request.method == "HEAD" ? Data() : body
        if !send(fd, header(status, headers, length: body.count) + head) { return }
      case .close: return
      case .hang:
        while !stopped { usleep(20_000) }
        return
      case .stall(let sent, let declared):
        _ = send(fd, header(200, [], length: declared) + sent)
        while !stopped { usleep(20_000) }
        return
      case .truncate(let sent, let declared):
        _ = send(fd, header(200, [], length: declared) + sent)
        return
      }
    }
  }

  private func header(_ status: Int, _ headers: [(String, String)], length: Int) -> Data {
    var text = "HTTP/1.1 \(status) Scripted\r\nContent-Length: \(length)\r\n"
    for (k, v) in headers { text += "\(k): \(v)\r\n" }
    return Data((text + "\r\n").utf8)
  }

  private func send(_ fd: Int32, _ data: Data) -> Bool {
    data.withUnsafeBytes { buf in
      var off = 0
      while off < buf.count {
        let n = Glibc.send(fd, buf.baseAddress! + off, buf.count - off, Int32(MSG_NOSIGNAL))
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        off += n
      }
      return true
    }
  }

  /// Reads one request (headers, then a body of Content-Length bytes); nil at the end.
  private func readRequest(_ fd: Int32, _ buffer: inout Data, connection: Int) -> Request? {
    let end = Data("\r\n\r\n".utf8)
    while buffer.range(of: end) == nil {
      guard fill(fd, &buffer) else { return nil }
    }
    let split = buffer.range(of: end)!
    let lines = String(decoding: buffer[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    buffer = Data(buffer[split.upperBound...])
    let first = lines[0].split(separator: " ")
    guard first.count >= 2 else { return nil }
    var headers = [String: String]()
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let length = Int(headers["content-length"] ?? "0") ?? 0
    // A client that waits for a go-ahead before the body (libcurl above 1 MiB) gets it now.
    if headers["expect"]?.lowercased() == "100-continue", buffer.count < length {
      guard send(fd, Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return nil }
    }
    while buffer.count < length {
      guard fill(fd, &buffer) else { return nil }
    }
    let body = Data(buffer.prefix(length))
    buffer = Data(buffer.dropFirst(length))
    return Request(
      method: String(first[0]), path: String(first[1]), headers: headers, body: body, connection: connection)
  }

  private func fill(_ fd: Int32, _ buffer: inout Data) -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65536)
    while !stopped {
      var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      // A signal (a child process of another test exiting) interrupts poll and recv: that is
      // not the client going away, so it must not close the connection.
      let ready = poll(&pfd, 1, 50)
      if ready == 0 || (ready < 0 && errno == EINTR) { continue }
      if ready < 0 { return false }
      let n = recv(fd, &chunk, chunk.count, 0)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return false }
      buffer.append(contentsOf: chunk[0..<n])
      return true
    }
    return false
  }

  /// A server answering GETs and HEADs from the files under `root` (404 for a missing one),
  /// each after `delay` seconds: a degraded source that is slow, not dead.
  public static func serving(_ root: String, delay: Double = 0) throws -> LoopbackServer {
    try LoopbackServer(recording: false) { req in
      if delay > 0 { usleep(UInt32(delay * 1e6)) }
      let path = req.path.split(separator: "?").first.map(String.init) ?? req.path
      guard !path.contains(".."), let d = FileManager.default.contents(atPath: root + path) else {
        return .respond(404)
      }
      return .respond(200, body: d)
    }
  }

  /// A port on 127.0.0.1 where nothing listens (bound, then closed).
  public static func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
  }

  /// Whether every port in `ports` can be bound on 127.0.0.1 now.
  public static func portsFree(_ ports: ClosedRange<Int>) -> Bool {
    ports.allSatisfy { port in
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      defer { close(fd) }
      var addr = sockaddr_in()
      addr.sin_family = sa_family_t(AF_INET)
      addr.sin_addr.s_addr = inet_addr("127.0.0.1")
      addr.sin_port = UInt16(port).bigEndian
      return withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
      }
    }
  }
}
