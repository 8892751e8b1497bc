// The only file that imports libcurl. Each C call goes raw call -> check -> Swift method.
import CCurl
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// libcurl, loaded (see the CCurl shim) and its global state set up once per process, before
/// the first handle of the first request: nil, or why the library could not be loaded.
private let curlUnavailable: String? = {
  if let why = tsuku_curl_load() { return String(cString: why) }
  _ = tsuku_curl_global_init(tsuku_curl_global_default)
  return nil
}()

/// The real transport: libcurl's multi interface, so a batch runs up to `maxConcurrent`
/// transfers at once over kept-alive connections (HTTP/2 multiplexed where the server offers
/// it over TLS).
///
/// - Connections are cached per multi handle, and multi handles are pooled per transport: the
///   requests of one store share connections across batches. Batches from several threads at
///   once each take their own multi handle.
/// - Timeouts: `connectTimeout`, a stall after `stallTimeout` seconds without a byte, and
///   for the whole request, retries included, `totalTimeout` or what is left of the shared
///   `deadline`, whichever ends first. A request that starts after the deadline fails at once.
/// - A batch with no answer for a second is reported to the `waitReporter`, if any.
/// - Proxies come from the environment as libcurl reads them (`HTTPS_PROXY`, `http_proxy`,
///   `NO_PROXY`); nothing here overrides them. `caBundle` replaces the system's CA bundle.
/// - Only http and https are spoken, redirects included; signed requests and POSTs follow no
///   redirects.
public final class CurlTransport: HTTPTransport {
  public let options: TransportOptions
  private let counter = Atomic<Int>(0)
  private let pool = Mutex<[MultiHandle]>([])

  public init(options: TransportOptions = TransportOptions()) {
    self.options = options
  }

  /// A transport with the defaults and `TSUKU_API_TIMEOUT`/`TSUKU_CA_BUNDLE` from the environment.
  public static func fromEnvironment(_ environment: [String: String] = ProcessEnvironment.current)
    throws -> CurlTransport
  {
    CurlTransport(options: try TransportOptions.fromEnvironment(environment))
  }

  public var requestCount: Int { counter.load(ordering: .relaxed) }

  public func perform(_ requests: [HTTPRequest]) -> [Result<HTTPResponse, TsukuError>] {
    if requests.isEmpty { return [] }
    if let why = curlUnavailable { return requests.map { _ in .failure(TsukuError(.unavailable, why)) } }
    let multi = pool.withLock { $0.popLast() } ?? MultiHandle(maxConnections: options.maxConcurrent)
    defer { pool.withLock { $0.append(multi) } }
    return Batch(multi: multi.handle, options: options, requests: requests) { [self] in
      counter.add(1, ordering: .relaxed)
    }.run()
  }
}

/// A multi handle: its connection cache outlives the batches that use it.
private final class MultiHandle: @unchecked Sendable {
  // Safe: the pool hands a handle to one batch at a time.
  let handle: UnsafeMutableRawPointer
  init(maxConnections: Int) {
    handle = tsuku_curl_multi_init()!
    _ = tsuku_curl_multi_setopt_long(handle, CURLMOPT_PIPELINING, tsuku_curlpipe_multiplex)
    _ = tsuku_curl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, max(4, maxConnections))
  }
  deinit { tsuku_curl_multi_cleanup(handle) }
}

private func now() -> Double { Deadline.now() }

private struct CurlSetupError: Error { let message: String }

/// The command's shared deadline was spent before an attempt could start.
private struct DeadlineSpent: Error {}

private func check(_ rc: CURLcode, _ option: String) throws {
  if rc != CURLE_OK {
    throw CurlSetupError(message: "cannot set curl option \(option): \(String(cString: tsuku_curl_easy_strerror(rc)))")
  }
}

/// One request across its attempts, and the state of the attempt in flight.
private final class Transfer {
  let index: Int
  let request: HTTPRequest
  /// The end of this request's time budget, set when its first attempt starts (a request
  /// waiting for a free slot does not spend its budget).
  var deadline = 0.0
  let budget: Double
  var attempt = 0
  var notBefore = 0.0
  var easy: UnsafeMutableRawPointer?
  var headerList: UnsafeMutablePointer<curl_slist>?
  let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(tsuku_curl_error_size) + 1)
  var status = 0
  var headers = [String: String]()
  var body = Data()
  /// Success-body bytes received in this attempt (those handed to a sink included).
  var received = 0
  var overflow = false
  var refused = false
  var uploadOffset = 0
  /// When bytes last moved, and how many had moved then: for stall detection.
  var lastProgress = 0.0
  var moved: Int64 = -1
  var stalled = false
  var stallTimeout = 15.0

  static let errorBodyLimit = 64 << 10

  init(index: Int, request: HTTPRequest, budget: Double) {
    self.index = index
    self.request = request
    self.budget = budget
  }

  deinit {
    release()
    errorBuffer.deallocate()
  }

  func reset() {
    status = 0
    headers = [:]
    body = Data()
    received = 0
    overflow = false
    refused = false
    request.sink?.restart()
    uploadOffset = 0
    errorBuffer[0] = 0
    lastProgress = now()
    moved = -1
    stalled = false
  }

  /// Called by libcurl about once a second: aborts a transfer whose bytes stopped moving.
  /// (libcurl's own low-speed check averages over several seconds, so it fires late.)
  func progress(_ bytes: Int64) -> Int32 {
    let t = now()
    if bytes != moved {
      moved = bytes
      lastProgress = t
      return 0
    }
    if t - lastProgress >= stallTimeout {
      stalled = true
      return 1
    }
    return 0
  }

  func release() {
    if let easy { tsuku_curl_easy_cleanup(easy) }
    easy = nil
    tsuku_curl_slist_free_all(headerList)
    headerList = nil
  }

  /// Body bytes: a success body is cut off past `maxResponseSize`; an error body is kept up
  /// to a small limit and the rest dropped.
  func receive(_ bytes: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
    if (200..<300).contains(status) {
      if received + count > request.maxResponseSize {
        overflow = true
        return 0  // curl aborts the transfer with CURLE_WRITE_ERROR
      }
      received += count
      if let sink = request.sink {
        if sink.write(UnsafeRawBufferPointer(start: bytes, count: count)) { return count }
        refused = true
        return 0
      }
      if body.isEmpty, let length = headers["content-length"].flatMap({ Int($0) }), length <= request.maxResponseSize {
        // One allocation of the announced size, not a series of doublings (a pack is megabytes).
        body.reserveCapacity(length)
      }
      body.append(UnsafeRawPointer(bytes).assumingMemoryBound(to: UInt8.self), count: count)
    } else if body.count < Self.errorBodyLimit {
      let keep = min(count, Self.errorBodyLimit - body.count)
      body.append(UnsafeRawPointer(bytes).assumingMemoryBound(to: UInt8.self), count: keep)
    }
    return count
  }

  /// One header line; a status line starts a new block (redirects, `100 Continue`).
  func header(_ bytes: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
    lastProgress = now()
    let line = String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
      let parts = line.split(separator: " ", maxSplits: 2)
      status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
      headers = [:]
      body = Data()  // the body of a redirect before this answer
      received = 0
    } else if let colon = line.firstIndex(of: ":") {
      let name = line[..<colon].lowercased()
      headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return count
  }

  func send(_ buffer: UnsafeMutablePointer<CChar>, _ capacity: Int) -> Int {
    guard let data = request.body, uploadOffset < data.count else { return 0 }
    let n = min(capacity, data.count - uploadOffset)
    data.withUnsafeBytes { src in
      UnsafeMutableRawPointer(buffer).copyMemory(from: src.baseAddress! + uploadOffset, byteCount: n)
    }
    uploadOffset += n
    return n
  }

  var errorText: String {
    String(cString: errorBuffer).trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

/// One call to `perform`: starts transfers as slots free up, collects them as they finish,
/// and schedules retries after their backoff.
private final class Batch {
  let multi: UnsafeMutableRawPointer
  let options: TransportOptions
  let countAttempt: () -> Void
  var waiting: [Transfer]
  var active = [UnsafeMutableRawPointer: Transfer]()
  var results: [Result<HTTPResponse, TsukuError>?]
  var remaining: Int
  /// When the batch last saw a request finish (or started), and whether that wait was reported.
  var lastEvent = now()
  var reported = false

  init(
    multi: UnsafeMutableRawPointer, options: TransportOptions, requests: [HTTPRequest],
    countAttempt: @escaping () -> Void
  ) {
    self.multi = multi
    self.options = options
    self.countAttempt = countAttempt
    waiting = requests.enumerated().map {
      Transfer(index: $0.offset, request: $0.element, budget: options.totalTimeout)
    }
    results = Array(repeating: nil, count: requests.count)
    remaining = requests.count
  }

  func run() -> [Result<HTTPResponse, TsukuError>] {
    while remaining > 0 {
      startReady()
      if active.isEmpty {
        // Only retries waiting out their backoff.
        if let next = waiting.map(\.notBefore).min() {
          let wait = next - now()
          if wait > 0 { usleep(UInt32(min(wait, 5) * 1e6)) }
        }
        continue
      }
      var running: Int32 = 0
      _ = tsuku_curl_multi_perform(multi, &running)
      collectFinished()
      if remaining == 0 { break }
      reportWait()
      var timeout = 1000.0
      if options.waitReporter != nil && !reported {
        timeout = min(timeout, max(0, (lastEvent + WaitReporter.delay - now()) * 1000) + 10)
      }
      if active.count < options.maxConcurrent, let next = waiting.map(\.notBefore).min() {
        timeout = min(timeout, max(0, (next - now()) * 1000))
      }
      if !active.isEmpty { _ = tsuku_curl_multi_poll(multi, nil, 0, Int32(timeout), nil) }
    }
    return results.map { $0! }
  }

  /// Tells the reporter once about a wait past `WaitReporter.delay` with nothing finished.
  private func reportWait() {
    guard let reporter = options.waitReporter, !reported, now() - lastEvent >= WaitReporter.delay,
      let first = active.values.min(by: { $0.index < $1.index })
    else { return }
    reported = true
    let left = options.deadline?.remaining ?? max(0, first.deadline - now())
    reporter.waiting(for: first.request, others: remaining - 1, remaining: left)
  }

  private func startReady() {
    let t0 = now()
    while active.count < options.maxConcurrent, let i = waiting.firstIndex(where: { $0.notBefore <= t0 }) {
      let t = waiting.remove(at: i)
      do {
        try start(t)
      } catch is DeadlineSpent {
        t.release()
        finish(t, .failure(.deadline(options.deadline?.seconds ?? t.budget)))
      } catch let e as CurlSetupError {
        t.release()
        finish(t, .failure(HTTPFailure(.setup, e.message)))
      } catch {
        t.release()
        finish(t, .failure(HTTPFailure(.setup, "\(error)")))
      }
    }
  }

  private func collectFinished() {
    var left: Int32 = 0
    while let msg = tsuku_curl_multi_info_read(multi, &left) {
      guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle, let t = active[easy] else { continue }
      let code = msg.pointee.data.result
      active[easy] = nil
      tsuku_curl_multi_remove_handle(multi, easy)
      let outcome: Result<HTTPResponse, HTTPFailure>
      if code == CURLE_OK {
        var status = 0
        if tsuku_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK, status > 0 {
          t.status = status
        }
        outcome = .success(HTTPResponse(status: t.status, headers: t.headers, body: t.body))
      } else {
        outcome = .failure(classify(code, t))
      }
      t.release()
      finish(t, outcome)
    }
  }

  /// Records the outcome, or puts the request back in line for another attempt.
  private func finish(_ t: Transfer, _ outcome: Result<HTTPResponse, HTTPFailure>) {
    let time = now()
    if let delay = options.retry.delay(after: outcome, attempt: t.attempt), time + delay + 0.05 < t.deadline {
      t.notBefore = time + delay
      waiting.append(t)
      return
    }
    results[t.index] = outcome.mapError { $0.error(for: t.request, attempts: t.attempt) }
    remaining -= 1
    lastEvent = time
    reported = false
  }

  private func start(_ t: Transfer) throws {
    t.reset()
    if t.attempt == 0 {
      t.deadline = now() + t.budget
      if let shared = options.deadline { t.deadline = min(t.deadline, shared.end) }
    }
    // Too little left to be worth a connection (the margin `classify` allows as well).
    let left = t.deadline - now()
    if left < 0.05 { throw DeadlineSpent() }
    t.attempt += 1
    guard let easy = tsuku_curl_easy_init() else { throw CurlSetupError(message: "cannot create a curl handle") }
    t.easy = easy
    let r = t.request
    try setString(easy, CURLOPT_URL, r.url, "url")
    try check(tsuku_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "protocols")
    try setLong(easy, CURLOPT_NOSIGNAL, 1, "nosignal")
    try setLong(easy, CURLOPT_TCP_KEEPALIVE, 1, "tcp keepalive")
    try setLong(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS), "http version")
    try setLong(easy, CURLOPT_PIPEWAIT, 1, "pipewait")
    try setLong(
      easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(min(options.connectTimeout, left) * 1000)), "connect timeout")
    try setLong(easy, CURLOPT_TIMEOUT_MS, max(1, Int(left * 1000)), "timeout")
    // Stalls: our progress callback, exact to about a second; libcurl's low-speed check as a
    // backstop (it averages over a few seconds, so it fires later).
    t.stallTimeout = options.stallTimeout
    try setLong(easy, CURLOPT_LOW_SPEED_LIMIT, 1, "low speed limit")
    try setLong(easy, CURLOPT_LOW_SPEED_TIME, max(1, Int(options.stallTimeout.rounded(.up))), "low speed time")
    try setLong(easy, CURLOPT_NOPROGRESS, 0, "progress")
    try check(
      tsuku_curl_setopt_pointer(easy, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(t).toOpaque()), "progress data")
    try check(
      tsuku_curl_setopt_xferinfo(easy) { me, _, down, _, up in
        Unmanaged<Transfer>.fromOpaque(me!).takeUnretainedValue().progress(Int64(down) + Int64(up))
      }, "progress function")
    try check(tsuku_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, t.errorBuffer), "error buffer")
    if let ca = options.caBundle { try setString(easy, CURLOPT_CAINFO, ca, "cainfo") }
    switch r.method {
    case "GET": break
    case "HEAD": try setLong(easy, CURLOPT_NOBODY, 1, "nobody")
    case "PUT":
      try setLong(easy, CURLOPT_UPLOAD, 1, "upload")
      try check(tsuku_curl_setopt_offset(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(r.body?.count ?? 0)), "infilesize")
      try check(
        tsuku_curl_setopt_read(easy) { buf, size, n, me in
          Unmanaged<Transfer>.fromOpaque(me!).takeUnretainedValue().send(buf!, size * n)
        }, "read function")
    case "POST":
      // A form (an STS exchange): the body is sent from the same read function as a PUT's.
      try setLong(easy, CURLOPT_POST, 1, "post")
      try check(
        tsuku_curl_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(r.body?.count ?? 0)), "post size")
      try check(
        tsuku_curl_setopt_read(easy) { buf, size, n, me in
          Unmanaged<Transfer>.fromOpaque(me!).takeUnretainedValue().send(buf!, size * n)
        }, "read function")
    default: try setString(easy, CURLOPT_CUSTOMREQUEST, r.method, "custom request")
    }
    if let s = r.signing {
      try setString(easy, CURLOPT_AWS_SIGV4, "aws:amz:\(s.region):s3", "aws sigv4")
      try setString(easy, CURLOPT_USERPWD, "\(s.accessKeyID):\(s.secretAccessKey)", "credentials")
    } else if r.method != "POST" {
      // A POST (a token for STS) goes only where it was addressed: no redirects either.
      try setLong(easy, CURLOPT_FOLLOWLOCATION, 1, "follow location")
      try setLong(easy, CURLOPT_MAXREDIRS, 5, "max redirects")
      try check(tsuku_curl_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "redirect protocols")
    }
    var lines = r.headers.map { "\($0.name): \($0.value)" }
    // Temporary credentials: libcurl signs every header it is given, this one included, as
    // SigV4 requires of `x-amz-security-token`.
    if let token = r.signing?.sessionToken { lines.append("x-amz-security-token: \(token)") }
    // No `Expect: 100-continue` round trip; but libcurl 7.88 would sign the blank `Expect:`
    // header that removes it, so signed uploads keep it (libcurl sends it above 1 MiB only).
    if (r.method == "PUT" || r.method == "POST") && r.signing == nil { lines.append("Expect:") }
    for line in lines {
      guard let list = tsuku_curl_slist_append(t.headerList, line) else {
        throw CurlSetupError(message: "cannot add header '\(line.prefix(40))'")
      }
      t.headerList = list
    }
    if t.headerList != nil { try check(tsuku_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, t.headerList), "headers") }
    let me = Unmanaged.passUnretained(t).toOpaque()
    try check(tsuku_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, me), "write data")
    try check(tsuku_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, me), "header data")
    try check(tsuku_curl_setopt_pointer(easy, CURLOPT_READDATA, me), "read data")
    try check(
      tsuku_curl_setopt_write(easy) { buf, size, n, me in
        Unmanaged<Transfer>.fromOpaque(me!).takeUnretainedValue().receive(buf!, size * n)
      }, "write function")
    try check(
      tsuku_curl_setopt_header(easy) { buf, size, n, me in
        Unmanaged<Transfer>.fromOpaque(me!).takeUnretainedValue().header(buf!, size * n)
      }, "header function")
    let rc = tsuku_curl_multi_add_handle(multi, easy)
    if rc != CURLM_OK {
      throw CurlSetupError(message: "cannot start transfer: \(String(cString: tsuku_curl_multi_strerror(rc)))")
    }
    countAttempt()
    active[easy] = t
  }

  private func setLong(_ h: UnsafeMutableRawPointer, _ o: CURLoption, _ v: Int, _ name: String) throws {
    try check(tsuku_curl_setopt_long(h, o, v), name)
  }

  private func setString(_ h: UnsafeMutableRawPointer, _ o: CURLoption, _ v: String, _ name: String) throws {
    // libcurl copies option strings, so a temporary C string is enough.
    try check(tsuku_curl_setopt_string(h, o, v), name)
  }

  /// The failure behind a curl error code, in words a user can act on.
  private func classify(_ code: CURLcode, _ t: Transfer) -> HTTPFailure {
    let text = t.errorText.isEmpty ? String(cString: tsuku_curl_easy_strerror(code)) : t.errorText
    let lower = text.lowercased()
    switch code {
    case CURLE_ABORTED_BY_CALLBACK where t.stalled:
      return .stall(options.stallTimeout)
    case CURLE_WRITE_ERROR where t.overflow:
      return .tooLarge(t.request.maxResponseSize)
    case CURLE_WRITE_ERROR where t.refused:
      return .refusedBody
    case CURLE_COULDNT_CONNECT:
      var os = 0
      if let easy = t.easy { _ = tsuku_curl_getinfo_long(easy, CURLINFO_OS_ERRNO, &os) }
      if os == Int(ECONNREFUSED) || lower.contains("refused") { return .refused }
      if lower.contains("timed out") { return .connectTimeout(options.connectTimeout) }
      return HTTPFailure(.other, "cannot connect (\(lowerFirst(text)))")
    case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
      return HTTPFailure(.resolve, lowerFirst(text))
    case CURLE_OPERATION_TIMEDOUT:
      if lower.contains("too slow") { return .stall(options.stallTimeout) }
      if let shared = options.deadline, shared.remaining < 0.05 { return .deadline(shared.seconds) }
      if lower.contains("connect") { return .connectTimeout(options.connectTimeout) }
      return .timeout(options.totalTimeout)
    case CURLE_PARTIAL_FILE:
      return .truncated(lowerFirst(text))
    case CURLE_GOT_NOTHING:
      return HTTPFailure(.other, "the server closed the connection without answering")
    case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
      CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR:
      return HTTPFailure(.tls, "tls: \(lowerFirst(text))")
    case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
      return HTTPFailure(.setup, lowerFirst(text))
    default:
      return HTTPFailure(.other, lowerFirst(text))
    }
  }
}

private func lowerFirst(_ s: String) -> String {
  guard let f = s.first else { return s }
  return f.lowercased() + s.dropFirst()
}
