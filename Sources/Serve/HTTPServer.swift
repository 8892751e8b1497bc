import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Store
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The HTTP/1.1 server of `tsuku serve`, on SwiftNIO: a fixed set of GET paths, bounded heads,
/// bounded time to send a head, bounded idle keep-alive, a cap on connections. SIGTERM or
/// SIGINT stops accepting, lets the requests in flight finish, and returns.
public final class HTTPServer: Sendable {
  let state: ServeState
  let responder: Responder
  private let open = Mutex<[ObjectIdentifier: any Channel]>([:])
  /// Set (under `open`'s lock) when a stop began: a connection accepted after that is closed
  /// at once, since the quiescing pass over `open` has already run.
  private let stopping = Mutex(false)
  private let connections = Atomic<Int>(0)

  public init(state: ServeState) {
    self.state = state
    responder = Responder(state: state)
  }

  /// Binds, calls `listening` with the bound address, serves until SIGTERM or SIGINT.
  public func run(listening: (String) -> Void) throws {
    let s = state.settings
    let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, s.threads))
    let pool = NIOThreadPool(numberOfThreads: 2)
    pool.start()
    defer {
      try? pool.syncShutdownGracefully()
      try? group.syncShutdownGracefully()
    }
    let limits: NIOHTTPDecoderLimitConfiguration = {
      var l = NIOHTTPDecoderLimitConfiguration()
      l.maxHeaderFieldSize = s.maxHeadBytes
      l.maxHeaderListSize = s.maxHeadBytes
      l.maxHeaderFieldCount = 100
      return l
    }()
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 512)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 4)
      .childChannelInitializer { [self] channel in
        channel.eventLoop.makeCompletedFuture {
          try self.setUp(channel, limits: limits, pool: pool)
        }
      }
    let server: any Channel
    do {
      server = try bootstrap.bind(host: s.host, port: s.port).wait()
    } catch {
      throw TsukuError(.unavailable, "cannot listen on \(s.host):\(s.port): \(error)")
    }
    let port = server.localAddress?.port ?? s.port
    listening(s.host.contains(":") ? "[\(s.host)]:\(port)" : "\(s.host):\(port)")

    // Stop: close the listener (no new connections), then ask every connection to close once
    // its request in flight is answered (RequestHandler's quiescing).
    let signals = DispatchQueue(label: "tsuku-serve signals")
    var sources = [any DispatchSourceSignal]()
    for sig in [SIGTERM, SIGINT] {
      signal(sig, SIG_IGN)
      let src = DispatchSource.makeSignalSource(signal: sig, queue: signals)
      src.setEventHandler { [self] in
        state.log.info("stopping: no new connections; finishing the requests in flight")
        server.close(promise: nil)
        let current = open.withLock { list in
          stopping.withLock { $0 = true }
          return Array(list.values)
        }
        for c in current {
          c.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
      }
      src.resume()
      sources.append(src)
    }
    try server.closeFuture.wait()
    // The requests in flight, each connection closing after its answer (bounded wait).
    let deadline = Date().addingTimeInterval(max(s.requestTimeout, 5))
    while Date() < deadline, open.withLock({ !$0.isEmpty }) { usleep(10_000) }
    for c in open.withLock({ Array($0.values) }) { c.close(promise: nil) }
    for src in sources { src.cancel() }
  }

  private func setUp(_ channel: any Channel, limits: NIOHTTPDecoderLimitConfiguration, pool: NIOThreadPool) throws {
    let s = state.settings
    let n = connections.wrappingAdd(1, ordering: .relaxed).newValue
    let id = ObjectIdentifier(channel)
    channel.closeFuture.whenComplete { [self] _ in
      connections.wrappingSubtract(1, ordering: .relaxed)
      open.withLock { _ = $0.removeValue(forKey: id) }
    }
    if n > s.maxConnections {
      state.count(status: 503)
      channel.close(promise: nil)
      return
    }
    let late = open.withLock { list in
      list[id] = channel
      return stopping.withLock { $0 }
    }
    if late {
      // Accepted from the backlog after the stop began: nothing is in flight on it.
      channel.close(promise: nil)
      return
    }
    let guard_ = ConnectionGuard(
      maxHead: s.maxHeadBytes, requestTimeout: .nanoseconds(Int64(s.requestTimeout * 1e9)),
      idleTimeout: .nanoseconds(Int64(s.idleTimeout * 1e9)), state: state)
    let sync = channel.pipeline.syncOperations
    try sync.addHandler(guard_)
    try sync.addHandler(HTTPResponseEncoder())
    try sync.addHandler(
      ByteToMessageHandler(
        HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: limits)))
    try sync.addHandler(RequestHandler(responder: responder, guard_: guard_, state: state, pool: pool))
  }
}

/// Before the HTTP decoder: bounds the bytes and the time a request head may take, and the
/// time a kept-alive connection may sit idle. Too large a head: 431 and close; too slow: 408
/// and close; idle too long: close.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  let maxHead: Int
  let requestTimeout: TimeAmount
  let idleTimeout: TimeAmount
  let state: ServeState
  private var context: ChannelHandlerContext?
  /// A head was decoded and its answer is not written yet.
  private var inRequest = false
  /// Bytes received since the last head was decoded (or the connection opened).
  private var headBytes = 0
  /// One ticking timer per connection (every `tick`, at most 1 s): a request moves `deadline`,
  /// it does not schedule and cancel a task, which costs as much as the rest of a small answer.
  private var ticking = false
  private var deadline = NIODeadline.distantFuture
  /// What the deadline ends: nil the idle wait (close), a status a head too slow (answer, close).
  private var onDeadline: (status: Int?, seconds: Double)?
  private var refused = false

  init(maxHead: Int, requestTimeout: TimeAmount, idleTimeout: TimeAmount, state: ServeState) {
    self.maxHead = maxHead
    self.requestTimeout = requestTimeout
    self.idleTimeout = idleTimeout
    self.state = state
  }

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }
  func handlerRemoved(context: ChannelHandlerContext) {
    onDeadline = nil
    self.context = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    arm(idleTimeout, status: nil)
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    onDeadline = nil
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if refused { return }
    if !inRequest {
      let n = unwrapInboundIn(data).readableBytes
      if headBytes == 0 && n > 0 { arm(requestTimeout, status: 408) }
      headBytes += n
      if headBytes > maxHead {
        refuse(431, "Request Header Fields Too Large", "request head larger than \(maxHead) bytes")
        return
      }
    }
    context.fireChannelRead(data)
  }

  /// The decoder produced a head: its bytes and its time are within the bounds.
  func headArrived() {
    inRequest = true
    headBytes = 0
    onDeadline = nil
    deadline = .distantFuture
  }

  /// Its answer is written: wait for the next request, at most the idle timeout.
  func answered() {
    inRequest = false
    if headBytes == 0 { arm(idleTimeout, status: nil) }
  }

  private func arm(_ after: TimeAmount, status: Int?) {
    deadline = .now() + after
    onDeadline = (status, Double(after.nanoseconds) / 1e9)
    if !ticking { tick() }
  }

  private var tickEvery: TimeAmount { min(.seconds(1), .nanoseconds(max(requestTimeout.nanoseconds / 4, 1_000_000))) }

  private func tick() {
    guard let context else { return }
    ticking = true
    context.eventLoop.assumeIsolated().scheduleTask(in: tickEvery) { [self] in
      ticking = false
      guard self.context != nil, !refused else { return }
      if let what = onDeadline, NIODeadline.now() >= deadline {
        onDeadline = nil
        if let status = what.status {
          refuse(status, "Request Timeout", "request head not complete within \(what.seconds) s")
        } else {
          self.context?.close(promise: nil)
        }
        return
      }
      tick()
    }
  }

  /// Answers with a bare status (before the HTTP encoder: raw bytes) and closes.
  func refuse(_ status: Int, _ phrase: String, _ why: String) {
    guard let context, !refused else { return }
    refused = true
    onDeadline = nil
    let body = why + "\n"
    let text =
      "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    state.count(status: status)
    state.log.request(
      method: "-", path: "-", status: status, bytes: body.utf8.count, seconds: 0,
      remote: context.channel.remoteAddress?.description ?? "")
    context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: text))).assumeIsolated().whenComplete {
      [self] _ in
      self.context?.close(promise: nil)
    }
  }
}

/// Answers decoded requests through the `Responder`; a refetch runs on the thread pool.
final class RequestHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let responder: Responder
  let guard_: ConnectionGuard
  let state: ServeState
  let pool: NIOThreadPool
  private var head: HTTPRequestHead?
  private var started: UInt64 = 0
  private var bodyBytes = 0
  /// A request waits for a blob fetched again off the event loop: the parts of the requests
  /// pipelined behind it wait here, so answers go out in request order.
  private var busy = false
  private var queued: [HTTPServerRequestPart] = []
  /// A stop was asked for while a request was in flight: close once it is answered.
  private var closeWhenAnswered = false

  init(responder: Responder, guard_: ConnectionGuard, state: ServeState, pool: NIOThreadPool) {
    self.responder = responder
    self.guard_ = guard_
    self.state = state
    self.pool = pool
  }

  /// A request the decoder cannot parse: 400 and close (what NIO's protocol error handler
  /// does, without its bookkeeping on every write).
  func errorCaught(context: ChannelHandlerContext, error: Error) {
    if error is HTTPParserError {
      guard_.refuse(400, "Bad Request", "malformed HTTP request")
    } else {
      context.close(promise: nil)
    }
  }

  /// SIGTERM: an idle connection closes now, a busy one after its answer.
  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      if head == nil && !busy && queued.isEmpty {
        context.close(promise: nil)
      } else {
        closeWhenAnswered = true
      }
      return
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let part = unwrapInboundIn(data)
    if busy {
      queued.append(part)
      return
    }
    handle(part, context: context)
  }

  private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
    switch part {
    case .head(let h):
      head = h
      bodyBytes = 0
      started = DispatchTime.now().uptimeNanoseconds
      guard_.headArrived()
    case .body(let b):
      // GET and HEAD carry no body worth reading: a large one is not read to its end.
      bodyBytes += b.readableBytes
      if bodyBytes > 65536 { context.close(promise: nil) }
    case .end:
      guard let h = head else { return }
      // Most requests carry no If-None-Match: look once, join only when there are several.
      var inm: String? = nil
      if h.headers.contains(name: "If-None-Match") {
        let all = h.headers["If-None-Match"]
        inm = all.count == 1 ? all[0] : all.joined(separator: ", ")
      }
      let outcome = responder.respond(method: h.method.rawValue, uri: h.uri, ifNoneMatch: inm)
      switch outcome {
      case .reply(let r): write(r, head: h, context: context)
      case .refetch(let blob, let snap):
        let responder = self.responder
        busy = true
        pool.runIfActive(eventLoop: context.eventLoop) { responder.refetch(blob, snap) }
          .assumeIsolated().whenComplete { [self] result in
            let r = (try? result.get()) ?? .text(500, "internal error")
            busy = false
            write(r, head: h, context: context)
            // The requests that arrived meanwhile, in order, until one waits again.
            while !busy, !queued.isEmpty { handle(queued.removeFirst(), context: context) }
          }
      }
    }
  }

  private func write(_ r: Reply, head h: HTTPRequestHead, context: ChannelHandlerContext) {
    var headers: HTTPHeaders
    if let prebuilt = r.prebuilt {  // a blob's: its size was checked against the signed entry
      headers = prebuilt
    } else {
      headers = HTTPHeaders(r.headers)
      if r.status != 304 { headers.add(name: "Content-Length", value: String(r.body.count)) }
    }
    let keepAlive = h.isKeepAlive && !closeWhenAnswered
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .init(statusCode: r.status), headers: headers))),
      promise: nil)
    let sent = r.sendBody && r.status != 304 ? r.body.count : 0
    // Counted and logged before the answer leaves: a client that has its answer finds the
    // request in the log and in /metrics, in the order the answers were given.
    state.count(status: r.status)
    state.log.request(
      method: h.method.rawValue, path: h.uri, status: r.status, bytes: sent,
      seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9,
      remote: context.channel.remoteAddress?.description ?? "")
    if sent > 0 {
      var buf = context.channel.allocator.buffer(capacity: sent)
      buf.writeBytes(r.body)
      context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
    }
    let guard_ = self.guard_
    let close = !keepAlive || closeWhenAnswered
    context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
      if close { context.close(promise: nil) }
      guard_.answered()
    }
    head = nil
  }
}
