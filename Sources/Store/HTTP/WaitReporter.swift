import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Says what a command is waiting for when a source is slow: once a batch of requests has
/// had no answer for `delay` seconds, one line naming the request (its URL starts with the
/// source's) and the most the wait may still take. On by default only when stderr is a
/// terminal; `TSUKU_PROGRESS=1` forces it on (for a test or a log that wants it), `0` off.
/// Lines are at least `interval` seconds apart, so a slow source that answers every request
/// after two seconds prints one line every few seconds, not one per request.
public final class WaitReporter: Sendable {
  /// How long a wait goes unreported.
  public static let delay = 1.0
  /// The least time between two lines.
  public static let interval = 5.0
  private let write: @Sendable (String) -> Void
  private let last = Mutex<Double>(-.infinity)

  /// A reporter writing its lines through `write` (one line each, no newline).
  public init(write: @escaping @Sendable (String) -> Void) { self.write = write }

  /// One that writes to stderr.
  public static func standardError() -> WaitReporter {
    WaitReporter { line in FileHandle.standardError.write(Data(("waiting: " + line + "\n").utf8)) }
  }

  /// Whether waits are reported: `TSUKU_PROGRESS` (`1` on, `0` off), else whether stderr is a
  /// terminal. Nil when they are not.
  public static func fromEnvironment(_ environment: [String: String]) -> WaitReporter? {
    switch environment["TSUKU_PROGRESS"] {
    case "1": return standardError()
    case "0": return nil
    default: return isatty(2) == 1 ? standardError() : nil
    }
  }

  /// A wait for `request` (and `others` more requests of its batch) that may last at most
  /// `remaining` seconds; `shared` says the limit is the command's (`TSUKU_API_TIMEOUT`)
  /// rather than the request's own.
  func waiting(for request: HTTPRequest, others: Int, remaining: Double) {
    let t = Deadline.now()
    let due = last.withLock { l in
      guard t - l >= WaitReporter.interval else { return false }
      l = t
      return true
    }
    guard due else { return }
    let more = others == 0 ? "" : others == 1 ? " and 1 more request" : " and \(others) more requests"
    let left = seconds(max(1, remaining.rounded(.up)))
    write("no answer yet from \(request)\(more); giving up in at most \(left) (TSUKU_API_TIMEOUT sets the limit)")
  }
}
