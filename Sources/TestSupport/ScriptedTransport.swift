import Foundation
import Store
import Synchronization

/// A transport that answers from a script, for fault injection: each request takes the next
/// step scripted for its URL, else the next step of the ordered script, else the fallback. The
/// same `RetryPolicy` as the real transport decides retries (the waits are recorded, not slept),
/// and the same size limit cuts off long bodies, so a test sees what a store would see.
public final class ScriptedTransport: HTTPTransport {
  /// What one attempt gets.
  public enum Step: Sendable {
    /// An HTTP answer.
    case respond(Int, headers: [String: String] = [:], body: Data = Data())
    /// Nothing listens there.
    case refused
    /// No answer within the total timeout.
    case timeout
    /// Headers, then no bytes for the stall interval.
    case stall
    /// The connection closed after `sent` bytes of a body declared longer.
    case truncated(sent: Data, declared: Int)

    /// `200` with `body`.
    public static func ok(_ body: Data, headers: [String: String] = [:]) -> Step {
      .respond(200, headers: headers, body: body)
    }
    public static let notFound = Step.respond(404, body: Data("<Error><Code>NoSuchKey</Code></Error>".utf8))
  }

  private struct State {
    var byURL: [String: [Step]] = [:]
    var ordered: [Step] = []
    var requests: [HTTPRequest] = []
    var delays: [Double] = []
  }
  private let state = Mutex(State())
  private let retry: RetryPolicy
  private let fallback: @Sendable (HTTPRequest) -> Step

  /// `fallback` answers requests with nothing scripted (default: 404).
  public init(
    retry: RetryPolicy = RetryPolicy(), fallback: @escaping @Sendable (HTTPRequest) -> Step = { _ in .notFound }
  ) {
    self.retry = retry
    self.fallback = fallback
  }

  /// Steps for the next requests to `url`, in order.
  public func script(_ url: String, _ steps: [Step]) {
    state.withLock { $0.byURL[url, default: []] += steps }
  }

  /// Steps for the next requests to any URL without steps of its own, in order.
  public func enqueue(_ steps: [Step]) {
    state.withLock { $0.ordered += steps }
  }

  /// Every attempt so far, retries included.
  public var requests: [HTTPRequest] { state.withLock { $0.requests } }
  /// The backoff delays the retry policy asked for.
  public var delays: [Double] { state.withLock { $0.delays } }
  public var requestCount: Int { state.withLock { $0.requests.count } }

  public func perform(_ requests: [HTTPRequest]) -> [Result<HTTPResponse, TsukuError>] {
    requests.map(run)
  }

  private func run(_ request: HTTPRequest) -> Result<HTTPResponse, TsukuError> {
    var attempt = 0
    while true {
      attempt += 1
      let step = next(for: request)
      let outcome = Self.outcome(of: step, for: request)
      if let delay = retry.delay(after: outcome, attempt: attempt) {
        state.withLock { $0.delays.append(delay) }
        continue
      }
      return outcome.mapError { $0.error(for: request, attempts: attempt) }
    }
  }

  private func next(for request: HTTPRequest) -> Step {
    let scripted: Step? = state.withLock { s in
      s.requests.append(request)
      if var steps = s.byURL[request.url], !steps.isEmpty {
        let step = steps.removeFirst()
        s.byURL[request.url] = steps
        return step
      }
      return s.ordered.isEmpty ? nil : s.ordered.removeFirst()
    }
    return scripted ?? fallback(request)
  }

  /// What the real transport reports for the same event.
  static func outcome(of step: Step, for request: HTTPRequest) -> Result<HTTPResponse, HTTPFailure> {
    switch step {
    case .respond(let status, let headers, let body):
      if (200..<300).contains(status) && body.count > request.maxResponseSize {
        return .failure(.tooLarge(request.maxResponseSize))
      }
      if (200..<300).contains(status), request.method != "HEAD", let sink = request.sink {
        sink.restart()
        let taken = body.withUnsafeBytes { sink.write($0) }
        return taken ? .success(HTTPResponse(status: status, headers: headers)) : .failure(.refusedBody)
      }
      return .success(HTTPResponse(status: status, headers: headers, body: request.method == "HEAD" ? Data() : body))
    case .refused: return .failure(.refused)
    case .timeout: return .failure(.timeout(30))
    case .stall: return .failure(.stall(15))
    case .truncated(let sent, let declared):
      if sent.count > request.maxResponseSize { return .failure(.tooLarge(request.maxResponseSize)) }
      if let sink = request.sink {
        sink.restart()
        _ = sent.withUnsafeBytes { sink.write($0) }
      }
      return .failure(.truncated("transfer closed with \(declared - sent.count) bytes remaining to read"))
    }
  }
}
