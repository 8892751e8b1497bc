import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A time budget on the monotonic clock: a command's network work (`TSUKU_API_TIMEOUT`, shared
/// by every request of the command, retries and backoff included), or a stage of
/// `registry validate`. The clock starts when the deadline is made, or for a deadline made
/// with `startingAtFirstUse`, at the first `start()` (the first request): waiting for the home's
/// lock spends none of it. Shared by reference across threads.
public final class Deadline: Sendable {
  /// The budget.
  public let seconds: Double
  private let begun: Mutex<Double?>

  /// A deadline `seconds` from now.
  public init(seconds: Double) {
    self.seconds = seconds
    begun = Mutex(Deadline.now())
  }

  /// A deadline whose clock starts at the first `start()`.
  public init(startingAtFirstUse seconds: Double) {
    self.seconds = seconds
    begun = Mutex(nil)
  }

  /// Starts the clock, if it has not started yet.
  public func start() { begun.withLock { if $0 == nil { $0 = Deadline.now() } } }

  /// Seconds spent so far (0 before the clock starts).
  public var elapsed: Double { begun.withLock { $0 }.map { Deadline.now() - $0 } ?? 0 }
  /// Seconds left, never below 0.
  public var remaining: Double { max(0, seconds - elapsed) }
  public var expired: Bool { elapsed >= seconds }
  /// The moment the budget runs out, on the clock of `Deadline.now()` (starting the clock).
  public var end: Double {
    start()
    return begun.withLock { $0! } + seconds
  }

  /// Throws `StageTimeout` with `progress` as its detail once the budget is spent.
  public func check(_ progress: String) throws { if expired { throw StageTimeout(detail: progress) } }

  /// Monotonic seconds, for comparing with `end`.
  public static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }
}

/// A deadline ran out between steps; `detail` says how far the work got.
public struct StageTimeout: Error {
  public let detail: String
  public init(detail: String) { self.detail = detail }
}
