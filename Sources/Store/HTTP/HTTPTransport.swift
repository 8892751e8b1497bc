import Foundation

/// SigV4 credentials for one request. Neither `description` nor a mirror (`dump`) shows the
/// secret or the session token.
public struct AWSSigning: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
  /// The region signed for (`auto` for R2, `us-east-1`, ...).
  public var region: String
  public var accessKeyID: String
  public var secretAccessKey: String
  /// Temporary credentials' token: the transport sends it as `x-amz-security-token`, a signed
  /// header.
  public var sessionToken: String?
  /// The role temporary credentials act as, for messages.
  public var role: String?
  public init(
    region: String, accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, role: String? = nil
  ) {
    self.region = region
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
    self.sessionToken = sessionToken
    self.role = role
  }
  public var description: String { "aws:amz:\(region):s3 as '\(accessKeyID)'" }
  public var debugDescription: String { description }
  public var customMirror: Mirror { Mirror(self, children: ["region": region, "accessKeyID": accessKeyID]) }
}

/// One HTTP request as a store makes it.
public struct HTTPRequest: Sendable, CustomStringConvertible {
  public var method: String
  public var url: String
  /// Header lines in order; a name given twice is sent twice.
  public var headers: [(name: String, value: String)]
  /// The body of a PUT; nil for none.
  public var body: Data?
  /// The most bytes of a successful (2xx) response body accepted: a longer body is cut off
  /// as it arrives and refused with `.integrity`. Error bodies are kept up to 64 KiB.
  public var maxResponseSize: Int
  /// Signs the request with SigV4 when set.
  public var signing: AWSSigning?
  /// Where a success (2xx) body goes as it arrives, instead of `HTTPResponse.body` (which is
  /// then empty): a pack written to disk without being held in memory. Error bodies still
  /// come back in the response.
  public var sink: (any BodySink)?

  public init(
    _ method: String, _ url: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
    maxResponseSize: Int = 1 << 20, signing: AWSSigning? = nil
  ) {
    self.method = method
    self.url = url
    self.headers = headers
    self.body = body
    self.maxResponseSize = maxResponseSize
    self.signing = signing
  }

  /// The value of a request header (case-insensitive), if set.
  public func header(_ name: String) -> String? {
    headers.last { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
  }

  /// `GET 'url'`: the subject of every message about this request.
  public var description: String { "\(method) '\(url)'" }
}

/// Takes a success body a piece at a time, as the transport receives it. Each attempt of the
/// request starts with `restart` (a retry resends the body from its first byte).
public protocol BodySink: AnyObject, Sendable {
  /// A new attempt: forget whatever an earlier one wrote.
  func restart()
  /// The next bytes of the body; false refuses them and aborts the transfer (the sink keeps
  /// the reason in `refusal`, for the caller to report).
  func write(_ bytes: UnsafeRawBufferPointer) -> Bool
  /// Why the sink refused bytes, if it did.
  var refusal: TsukuError? { get }
}

/// What a server answered: any status, 2xx or not.
public struct HTTPResponse: Sendable {
  public var status: Int
  /// Header names in lower case; a repeated header keeps its last value.
  public var headers: [String: String]
  public var body: Data
  public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
    self.status = status
    self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
    self.body = body
  }
  public func header(_ name: String) -> String? { headers[name.lowercased()] }
  /// The `ETag` header, as sent (quotes included).
  public var etag: String? { header("etag") }
  public var isSuccess: Bool { (200..<300).contains(status) }
}

/// Why one attempt at a request got no HTTP response (or a response that must not be used).
public struct HTTPFailure: Error, Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    /// Nothing listens there (a closed port).
    case refused
    /// The host name did not resolve.
    case resolve
    /// No connection within the connect timeout.
    case connectTimeout
    /// The whole request took longer than the total timeout.
    case timeout
    /// No bytes arrived for the stall interval.
    case stall
    /// The connection closed before the body the server declared was complete.
    case truncated
    /// The body was longer than the request's `maxResponseSize`; it was cut off.
    case tooLarge
    /// The request's `sink` refused the body (it holds the reason).
    case refusedBody
    /// TLS or certificate failure.
    case tls
    /// The request could not be set up (a bad URL, an option libcurl lacks).
    case setup
    /// Anything else the transport reports (reset, send failure, bad response).
    case other
  }
  public var kind: Kind
  /// A short lower-case cause, as it goes after the request in a message.
  public var detail: String
  public init(_ kind: Kind, _ detail: String) {
    self.kind = kind
    self.detail = detail
  }

  public static let refused = HTTPFailure(.refused, "connection refused")
  public static func connectTimeout(_ s: Double) -> HTTPFailure {
    HTTPFailure(.connectTimeout, "no connection within \(seconds(s))")
  }
  public static func timeout(_ s: Double) -> HTTPFailure {
    HTTPFailure(.timeout, "no complete answer within \(seconds(s))")
  }
  /// The command's shared budget ran out (before or during this request).
  public static func deadline(_ s: Double) -> HTTPFailure {
    HTTPFailure(.timeout, "the command's time limit of \(seconds(s)) ran out (TSUKU_API_TIMEOUT)")
  }
  public static func stall(_ s: Double) -> HTTPFailure { HTTPFailure(.stall, "stalled: no data for \(seconds(s))") }
  public static func truncated(_ why: String) -> HTTPFailure {
    HTTPFailure(.truncated, "the body was cut short (\(why))")
  }
  public static func tooLarge(_ max: Int) -> HTTPFailure {
    HTTPFailure(.tooLarge, "the body is longer than the \(max) bytes allowed; cut off")
  }
  public static let refusedBody = HTTPFailure(.refusedBody, "the body was refused where it was being stored")

  /// Whether trying again could help: connection-level trouble, not a refusal or a limit.
  public var isRetryable: Bool {
    switch kind {
    case .refused, .resolve, .connectTimeout, .stall, .truncated, .other: true
    case .timeout, .tooLarge, .refusedBody, .tls, .setup: false
    }
  }

  /// The project error for this failure of `request` after `attempts` tries.
  public func error(for request: HTTPRequest, attempts: Int) -> TsukuError {
    let code: TsukuError.Code = kind == .tooLarge || kind == .refusedBody ? .integrity : .unavailable
    let details = attempts > 1 ? ["tried \(attempts) times"] : []
    return TsukuError(code, "\(request): \(detail)", details: details)
  }
}

/// When to try a request again, and how long to wait first: exponential backoff with jitter on
/// connection errors, 429 and 5xx; `Retry-After` is honoured up to `retryAfterCap`. 403, 404 and
/// other answers are final.
public struct RetryPolicy: Sendable {
  /// Tries in all, the first included.
  public var maxAttempts: Int
  public var baseDelay: Double
  public var maxDelay: Double
  public var retryAfterCap: Double

  public init(maxAttempts: Int = 4, baseDelay: Double = 0.2, maxDelay: Double = 5, retryAfterCap: Double = 10) {
    self.maxAttempts = maxAttempts
    self.baseDelay = baseDelay
    self.maxDelay = maxDelay
    self.retryAfterCap = retryAfterCap
  }

  /// No retries at all.
  public static let none = RetryPolicy(maxAttempts: 1)

  /// Whether an answer with this status is worth another try.
  public static func isRetryable(status: Int) -> Bool { status == 429 || (500...599).contains(status) }

  /// The delay before attempt `attempt + 1` after `outcome`, or nil to stop here.
  public func delay(after outcome: Result<HTTPResponse, HTTPFailure>, attempt: Int) -> Double? {
    guard attempt < maxAttempts else { return nil }
    switch outcome {
    case .failure(let f): return f.isRetryable ? backoff(attempt) : nil
    case .success(let r):
      guard Self.isRetryable(status: r.status) else { return nil }
      if let after = r.header("retry-after").flatMap(Self.parseRetryAfter) {
        return min(max(after, 0), retryAfterCap)
      }
      return backoff(attempt)
    }
  }

  /// Full jitter between half and all of `base * 2^(attempt-1)`, capped at `maxDelay`.
  func backoff(_ attempt: Int) -> Double {
    let exp = min(maxDelay, baseDelay * pow(2, Double(max(0, attempt - 1))))
    return exp * Double.random(in: 0.5...1.0)
  }

  /// `Retry-After` as seconds: a number, or an HTTP date.
  static func parseRetryAfter(_ text: String) -> Double? {
    let t = text.trimmingCharacters(in: .whitespaces)
    if let n = Double(t) { return n }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "GMT")
    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return f.date(from: t).map { $0.timeIntervalSinceNow }
  }
}

/// Moves HTTP requests. A batch runs with bounded concurrency; each request is retried per
/// the transport's `RetryPolicy`, and its final outcome is returned in the batch's order: any
/// HTTP answer (including 404 or a 503 after the last retry) as a response, and a request that
/// got none as a one-line `TsukuError` naming the request (`GET 'url': connection refused`).
public protocol HTTPTransport: AnyObject, Sendable {
  func perform(_ requests: [HTTPRequest]) -> [Result<HTTPResponse, TsukuError>]
  /// How many requests went out so far, every retry counted: what a store cost.
  var requestCount: Int { get }
}

extension HTTPTransport {
  /// One request.
  public func perform(_ request: HTTPRequest) throws -> HTTPResponse {
    try perform([request])[0].get()
  }
}

/// Transport settings shared by the real transport and the scripted one.
public struct TransportOptions: Sendable {
  /// Transfers in flight at once.
  public var maxConcurrent = 16
  /// The most a connection may take to open (`TSUKU_CONNECT_TIMEOUT`), separate from the
  /// budget: a dead address fails fast and the next attempt or source gets the rest.
  public var connectTimeout: Double = 5
  /// The budget for one request, retries and waits included (`TSUKU_API_TIMEOUT`), when no
  /// `deadline` is shared.
  public var totalTimeout: Double = 30
  /// The budget shared by every request of a command: each request may take what is left of
  /// it, and retries stop when it is spent. Nil: each request has `totalTimeout`.
  public var deadline: Deadline?
  /// A transfer with no bytes for this long is a stall.
  public var stallTimeout: Double = 15
  public var retry = RetryPolicy()
  /// A CA bundle to trust instead of the system's (`TSUKU_CA_BUNDLE`).
  public var caBundle: String?
  /// Told, once, about a batch still waiting after `WaitReporter.delay`; nil: silent.
  public var waitReporter: WaitReporter?
  public init() {}

  /// The longest `TSUKU_API_TIMEOUT` accepted: a day.
  public static let maxTimeout: Double = 86400
  /// The longest `TSUKU_CONNECT_TIMEOUT` accepted.
  public static let maxConnectTimeout: Double = 600

  /// The defaults, with `TSUKU_API_TIMEOUT`, `TSUKU_CONNECT_TIMEOUT` (seconds),
  /// `TSUKU_CA_BUNDLE` and `TSUKU_PROGRESS` from `environment`; `deadline` is shared by the
  /// requests of the returned options (nil: each request has `TSUKU_API_TIMEOUT`).
  public static func fromEnvironment(
    _ environment: [String: String] = ProcessEnvironment.current, deadline: Deadline? = nil
  ) throws -> TransportOptions {
    var o = TransportOptions()
    o.totalTimeout = try apiTimeout(environment)
    o.connectTimeout = min(o.connectTimeout, o.totalTimeout)
    if let t = environment["TSUKU_CONNECT_TIMEOUT"], !t.isEmpty {
      guard let s = Double(t), s > 0, s <= TransportOptions.maxConnectTimeout else {
        throw TsukuError(
          .usage,
          "invalid TSUKU_CONNECT_TIMEOUT '\(t)': expected a number of seconds above 0, at most \(Int(TransportOptions.maxConnectTimeout))"
        )
      }
      o.connectTimeout = s
    }
    o.deadline = deadline
    if let ca = environment["TSUKU_CA_BUNDLE"], !ca.isEmpty { o.caBundle = ca }
    o.waitReporter = WaitReporter.fromEnvironment(environment)
    return o
  }

  /// `TSUKU_API_TIMEOUT` in seconds (30 when unset): the budget of a command's network work.
  public static func apiTimeout(_ environment: [String: String] = ProcessEnvironment.current) throws -> Double
  {
    guard let t = environment["TSUKU_API_TIMEOUT"], !t.isEmpty else { return TransportOptions().totalTimeout }
    // Bounded, so that every duration derived from it (milliseconds for libcurl, whole
    // seconds in messages) fits an integer.
    // A number of seconds, or a duration as the Go tsuku client reads the same variable (`30s`,
    // `1m`, `2m30s`), so one setting serves both programs.
    guard let s = Double(t) ?? GoDuration.seconds(t), s > 0, s <= TransportOptions.maxTimeout else {
      throw TsukuError(
        .usage,
        "invalid TSUKU_API_TIMEOUT '\(t)': expected a number of seconds above 0, at most \(Int(TransportOptions.maxTimeout))"
      )
    }
    return s
  }
}

/// `30 s`, `1.5 s`: a duration in messages.
func seconds(_ s: Double) -> String {
  s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
}

/// A duration as Go's `time.ParseDuration` writes it, which the Go tsuku client uses for the
/// variables both programs read: a sequence of decimal numbers, each with a unit (`ns`, `us`,
/// `µs`, `ms`, `s`, `m`, `h`; also `d` for days), like `300ms`, `1.5h` or `2h45m`. Seconds, or
/// nil for anything else (a sign, a bare number, an unknown unit).
public enum GoDuration {
  public static func seconds(_ text: String) -> Double? {
    let units: [(String, Double)] = [
      ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400),
    ]
    var rest = Substring(text.trimmingCharacters(in: .whitespaces).lowercased())
    guard !rest.isEmpty else { return nil }
    var total = 0.0
    while !rest.isEmpty {
      let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
      guard !number.isEmpty, let n = Double(number) else { return nil }
      rest = rest.dropFirst(number.count)
      // The longest unit that matches ("ms" before "m").
      guard let (u, f) = units.filter({ rest.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else { return nil }
      rest = rest.dropFirst(u.count)
      total += n * f
    }
    return total.isFinite ? total : nil
  }
}
