import Foundation
import Store
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A loopback HTTP proxy in front of a server: forwards every request unchanged (Host header
/// included, so SigV4 signatures still verify) and counts them, so request counts are measured
/// at the server side, not inside the client. Also a plain forward proxy for `http://` URLs
/// (`http_proxy=http://127.0.0.1:PORT`). Served by a `LoopbackServer`; stopped on deinit.
/// (`tools/counting-proxy` is the same proxy as a script, for `tools/bench`.)
public final class CountingProxy: Sendable {
  private let server: LoopbackServer
  private let counter = Counter()

  /// What the proxy's connections share.
  private final class Counter: Sendable {
    struct State {
      var count = 0
      /// The method and path of each request counted, `(conditional)` after it when it
      /// carried `If-None-Match`.
      var requests = [String]()
      /// After this many requests (counted from the start), every request is answered by
      /// closing the connection.
      var failAfter: Int?
    }
    let state = Mutex(State())
  }

  public var port: Int { server.port }
  public var endpoint: String { "http://127.0.0.1:\(port)" }

  /// Starts a proxy to `upstream` (an `http://127.0.0.1:PORT` endpoint) on a free port.
  public init(upstream: String) throws {
    guard let upPort = URL(string: upstream)?.port else {
      throw TsukuError(.usage, "counting proxy: no port in '\(upstream)'")
    }
    let counter = counter
    server = try LoopbackServer(recording: false) { request in
      let dead = counter.state.withLock { s in
        s.count += 1
        s.requests.append(request.method + " " + request.path + (request.headers["if-none-match"] == nil ? "" : " (conditional)"))
        return s.failAfter.map { s.count > $0 } ?? false
      }
      return dead ? .close : UpstreamHTTP.forward(request, port: upPort)
    }
  }

  deinit { server.stop() }

  /// Requests forwarded since the start or the last `reset`.
  public func count() throws -> Int { counter.state.withLock { $0.count } }
  /// The method and path of each request counted: `GET /bucket/reg/index.json (conditional)`.
  public func requests() -> [String] { counter.state.withLock { $0.requests } }
  public func reset() throws { counter.state.withLock { $0 = Counter.State() } }
  /// After `n` more requests, every request is answered by closing the connection.
  public func failAfter(_ n: Int) throws { counter.state.withLock { $0.failAfter = $0.count + n } }
}

/// One request sent to a loopback upstream on a fresh connection (`Connection: close`), and
/// its response read to the end: what the counting proxy forwards.
enum UpstreamHTTP {
  /// Headers of the client's connection, not of the request: never forwarded.
  static let hopByHop: Set<String> = ["connection", "proxy-connection"]
  /// Headers of the upstream's framing, replaced by the loopback server's own.
  static let framing: Set<String> = ["connection", "transfer-encoding", "content-length"]

  static func forward(_ r: LoopbackServer.Request, port: Int) -> LoopbackServer.Reply {
    var path = r.path
    if path.hasPrefix("http://") {
      // Absolute form: used as a forward proxy (http_proxy).
      let rest = path.dropFirst(7)
      path = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
    }
    var head = "\(r.method) \(path) HTTP/1.1\r\n"
    for (name, value) in r.headers.sorted(by: { $0.key < $1.key }) where !hopByHop.contains(name) {
      head += "\(name): \(value)\r\n"
    }
    head += "Connection: close\r\n\r\n"
    guard let raw = exchange(Data(head.utf8) + r.body, port: port), let response = parse(raw, method: r.method) else {
      return .close
    }
    return .respond(response.status, headers: response.headers, body: response.body)
  }

  /// Sends `request` to 127.0.0.1:`port` and reads until the upstream closes (60 s at most).
  static func exchange(_ request: Data, port: Int) -> Data? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 60, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { return nil }
    let sent = request.withUnsafeBytes { buf -> Bool in
      var off = 0
      while off < buf.count {
        let n = send(fd, buf.baseAddress! + off, buf.count - off, Int32(MSG_NOSIGNAL))
        if n <= 0 { return false }
        off += n
      }
      return true
    }
    guard sent else { return nil }
    var out = Data()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = recv(fd, &chunk, chunk.count, 0)
      if n < 0 && errno == EINTR { continue }
      if n < 0 { return nil }
      if n == 0 { return out }
      out.append(contentsOf: chunk[0..<n])
    }
  }

  struct Response {
    var status: Int
    var headers: [(String, String)]
    var body: Data
  }

  /// The final response in `raw` (interim `1xx` responses skipped), its body unchunked.
  static func parse(_ raw: Data, method: String) -> Response? {
    var rest = raw[...]
    let end = Data("\r\n\r\n".utf8)
    while true {
      guard let split = rest.range(of: end) else { return nil }
      let lines = String(decoding: rest[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
      rest = rest[split.upperBound...]
      let first = lines[0].split(separator: " ")
      guard first.count >= 2, let status = Int(first[1]) else { return nil }
      if (100..<200).contains(status) { continue }
      var headers = [(String, String)]()
      var length: Int?
      var chunked = false
      for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        switch name.lowercased() {
        case "content-length": length = Int(value)
        case "transfer-encoding": chunked = value.lowercased().contains("chunked")
        default: break
        }
        if !framing.contains(name.lowercased()) { headers.append((name, value)) }
      }
      if method == "HEAD" || status == 204 || status == 304 { return Response(status: status, headers: headers, body: Data()) }
      if chunked { return unchunk(Data(rest)).map { Response(status: status, headers: headers, body: $0) } }
      let body = length.map { Data(rest.prefix($0)) } ?? Data(rest)
      return Response(status: status, headers: headers, body: body)
    }
  }

  /// A `Transfer-Encoding: chunked` body, decoded; nil if it is cut short.
  static func unchunk(_ data: Data) -> Data? {
    var out = Data()
    var rest = data[...]
    let crlf = Data("\r\n".utf8)
    while let line = rest.range(of: crlf) {
      let sizeText = String(decoding: rest[..<line.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
      guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
      rest = rest[line.upperBound...]
      if size == 0 { return out }
      guard rest.count >= size else { return nil }
      out.append(rest.prefix(size))
      rest = rest.dropFirst(size).dropFirst(2)
    }
    return nil
  }
}
