import Foundation
import Store
import Synchronization

/// Wraps a real transport to see and change requests on their way out: log them, rewrite them
/// (drop a body, strip a header), or run something first (another publisher's write, to lose a
/// race on purpose). The hook runs once per request of a batch, before the batch goes out.
public final class HookTransport: HTTPTransport {
  private let inner: any HTTPTransport
  private let hook: @Sendable (HTTPRequest) -> HTTPRequest
  private let log = Mutex<[HTTPRequest]>([])

  public init(
    _ inner: any HTTPTransport = CurlTransport(), hook: @escaping @Sendable (HTTPRequest) -> HTTPRequest = { $0 }
  ) {
    self.inner = inner
    self.hook = hook
  }

  public func perform(_ requests: [HTTPRequest]) -> [Result<HTTPResponse, TsukuError>] {
    let changed = requests.map(hook)
    log.withLock { $0 += changed }
    return inner.perform(changed)
  }

  /// Requests as sent, in order (retries are the inner transport's and not listed).
  public var requests: [HTTPRequest] { log.withLock { $0 } }
  /// Attempts made by the inner transport, retries included.
  public var requestCount: Int { inner.requestCount }
}
