// The only file that imports libcurl. Each C call goes raw call -> check -> Swift method.
import CCurl
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// libcurl's global state, set up once per process before the first handle.
private let curlReady: CURLcode = curl_global_init(tsuku_curl_global_default)

/// The real transport: libcurl's multi interface, so a batch runs up to `maxConcurrent`
/// transfers at once over kept-alive connections (HTTP/2 multiplexed where the server offers
/// it over TLS).
///
/// - Connections are cached per multi handle, and multi handles are pooled per transport: the
///   requests of one store share connections across batches. Batches from several threads at
///   once each take their own multi handle.
/// - Timeouts: `connectTimeout`, a stall after `stallTimeout` seconds without a byte, and
///   `totalTimeout` for the whole request, retries included.
/// - Proxies come from the environment as libcurl reads them (`HTTPS_PROXY`, `http_proxy`,
///   `NO_PROXY`); nothing here overrides them. `caBundle` replaces the system's CA bundle.
/// - Only http and https are spoken, redirects included; signed requests follow no redirects.
public final class CurlTransport: HTTPTransport {
  public let options: TransportOptions
  private let counter = Atomic<Int>(0)
  private let pool = Mutex<[MultiHandle]>([])

  public init(options: TransportOptions = TransportOptions()) {
    _ = curlReady
    self.options = options
  }

  /// A transport with the defaults and `TSUKU_API_TIMEOUT`/`TSUKU_CA_BUNDLE` from the environment.
  public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
    throws -> CurlTransport
  {
    CurlTransport(options: try TransportOptions.fromEnvironment(environment))
  }

  public var requestCount: Int { counter.load(ordering: .relaxed) }

  public func perform(_ requests: [HTTPRequest]) -> [Result<HTTPResponse, TsukuError>] {
    if requests.isEmpty { return [] }
    let multi = pool.withLock { $0.popLast() } ?? MultiHandle(maxConnections: options.maxConcurrent)
    defer { pool.withLock { $0.append(multi) } }
    let batch = Batch(multi: multi.handle, options: options, counter: counter, requests: requests)
    return batch.run()
  }
}

/// A multi handle: its connection cache outlives the batches that use it.
private final class MultiHandle: @unchecked Sendable {
  // Safe: the pool hands a handle to one batch at a time.
  let handle: OpaquePointer
  init(maxConnections: Int) {
    handle = curl_multi_init()
    _ = tsuku_curl_multi_setopt_long(handle, CURLMOPT_PIPELINING, tsuku_curlpipe_multiplex)
    _ = tsuku_curl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, max(4, maxConnections))
  }
  deinit { curl_multi_cleanup(handle) }
}

private func now() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

private struct CurlSetupError: Error { let message: String }

private func check(_ rc: CURLcode, _ option: String) throws {
  if rc != CURLE_OK {
    throw CurlSetupError(message: "cannot set curl option \(option): \(String(cString: curl_easy_strerror(rc)))")
  }
}

/// One request across its attempts, and the state of the attempt in flight.
private final class Transfer {
  let index: Int
  let request: HTTPRequest
  let deadline: Double
  var attempt = 0
  var notBefore = 0.0
  var easy: OpaquePointer?
  var headerList: UnsafeMutablePointer<curl_slist>?
  let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(tsuku_curl_error_size) + 1)
  var status = 0
  var headers = [String: String]()
  var body = Data()
  var overflow = false
  var uploadOffset = 0

  static let errorBodyLimit = 64 << 10

  init(index: Int, request: HTTPRequest, deadline: Double) {
    self.index = index
    self.request = request
    self.deadline = deadline
  }

  deinit {
    release()
    errorBuffer.deallocate()
  }

  func reset() {
    status = 0
    headers = [:]
    body = Data()
    overflow = false
    uploadOffset = 0
    errorBuffer[0] = 0
  }

  func release() {
    if let easy { curl_easy_cleanup(easy) }
    easy = nil
    curl_slist_free_all(headerList)
    headerList = nil
  }

  /// Body bytes: a success body is cut off past `maxResponseSize`; an error body is kept up
  /// to a small limit and the rest dropped.
  func receive(_ bytes: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
    if (200..<300).contains(status) {
      if body.count + count > request.maxResponseSize {
        overflow = true
        return 0  // curl aborts the transfer with CURLE_WRITE_ERROR
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
    let line = String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
      let parts = line.split(separator: " ", maxSplits: 2)
      status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
      headers = [:]
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
  let multi: OpaquePointer
  let options: TransportOptions
  let counter: Atomic<Int>
  var waiting: [Transfer]
  var active = [OpaquePointer: Transfer]()
  var results: [Result<HTTPResponse, TsukuError>?]
  var remaining: Int

  init(multi: OpaquePointer, options: TransportOptions, counter: borrowing Atomic<Int>, requests: [HTTPRequest]) {
    self.multi = multi
    self.options = options
    self.counter = Atomic(0)
    let start = now()
    waiting = requests.enumerated().map {
      Transfer(index: $0.offset, request: $0.element, deadline: start + options.totalTimeout)
    }
    results = Array(repeating: nil, count: requests.count)
    remaining = requests.count
    counterRef = UnsafeRawPointer(Unmanaged.passUnretained(CounterBox.shared).toOpaque())
    _ = counterRef
  }
  private var counterRef: UnsafeRawPointer
}
