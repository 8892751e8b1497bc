import Foundation
import Store

/// Everything one command records: audit events, cache reads (the access log) and metrics.
/// Held in memory and written by `flush()`, which the command calls once when it ends,
/// whether it succeeded or failed; nothing is written behind its back.
public final class Recorder: @unchecked Sendable {
  public let home: Home
  /// The time every recording of this command is stamped with.
  public let now: Date
  public let audit: AuditLog
  /// What the command fetched, hit, missed and refused.
  public let metrics = ClientMetrics()
  let access: AccessLog

  public init(home: Home, now: Date) {
    self.home = home
    self.now = now
    audit = AuditLog(home: home)
    access = AccessLog(cacheDir: home.cacheDir)
  }

  /// An audit event.
  func record(_ e: AuditEvent) { audit.record(e) }

  /// A read of a cached blob (`hit`), or of one fetched after a miss.
  func cacheRead(_ id: ObjectID, hit: Bool) { access.note(id, hit: hit) }

  /// Writes what was recorded: the audit events, the access log, then the metrics (added to
  /// `$TSUKU_HOME/metrics.state.*`). Never fails the command; a second call writes only what
  /// was recorded since. A file refused because it is a symbolic link or not a regular file
  /// (someone put it there: nothing is written through it) is one line to `warn`; other
  /// failures (a read-only home) are silent, as the command's own writes report them.
  public func flush(warn: (String) -> Void = { _ in }) {
    let writes: [() throws -> Void] = [
      audit.flush, { [self] in try access.flush(now: now) }, { [self] in try metrics.add(to: home) },
    ]
    for write in writes {
      do { try write() } catch let e as TsukuError where e.reason == .notRegularFile {
        warn("\(e.message); nothing was written to it")
      } catch {}
    }
  }
}
