import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// One line of `$TSUKU_HOME/audit.log`. It never holds a secret: names, hashes, source URLs
/// (as configured, with any userinfo removed), versions and reasons only.
public struct AuditEvent: Codable, Sendable, Equatable {
  /// `fetch`, `cache_hit`, `verify_failure`, `revoked`, `trust_change`.
  public var event: String
  public var time: String
  public var name: String?
  public var sha256: String?
  public var source: String?
  public var index_version: Int?
  public var source_commit: String?
  public var age_seconds: Int?
  public var detail: String?

  public init(
    _ event: String, time: Date, name: String? = nil, sha256: ObjectID? = nil, source: String? = nil,
    indexVersion: Int? = nil, sourceCommit: String? = nil, ageSeconds: Int? = nil, detail: String? = nil
  ) {
    self.event = event
    self.time = Timestamp.format(time)
    self.name = name
    self.sha256 = sha256?.hex
    self.source = source.map(AuditLog.redact)
    index_version = indexVersion
    source_commit = sourceCommit
    age_seconds = ageSeconds
    self.detail = detail
  }
}

/// The append-only audit log: JSON lines, rotated by size (`audit.log`, `audit.log.1`, ...).
/// Events are buffered and written with one append per command, so recording a read costs no
/// synchronous write of its own.
public final class AuditLog: @unchecked Sendable {
  public let path: String
  public let maxBytes: Int
  public let keep: Int
  private var pending = [AuditEvent]()

  public init(home: Home, maxBytes: Int = 10 * 1024 * 1024, keep: Int = 3) {
    path = home.path + "/audit.log"
    self.maxBytes = maxBytes
    self.keep = keep
  }

  public func record(_ e: AuditEvent) { pending.append(e) }

  /// Appends the buffered events (one `write` under an exclusive lock), rotating first when
  /// the log has grown past `maxBytes`.
  public func flush() throws {
    guard !pending.isEmpty else { return }
    var text = Data()
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    for e in pending { text += ((try? enc.encode(e)) ?? Data()) + Data("\n".utf8) }
    pending.removeAll()
    try FileIO.makeDirectories((path as NSString).deletingLastPathComponent)
    // Never through a symbolic link, only to a regular file (`FileIO.open`).
    let fd = try FileIO.open(path, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600, failing: "cannot write audit log")
    defer { close(fd) }
    flock(fd, LOCK_EX)
    defer { flock(fd, LOCK_UN) }
    var st = stat()
    if fstat(fd, &st) == 0, Int(st.st_size) + text.count > maxBytes, st.st_size > 0 {
      rotate()
      let fresh = FileIO.openRaw(path, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600)
      if fresh >= 0 {
        defer { close(fresh) }
        _ = text.withUnsafeBytes { Glibc.write(fresh, $0.baseAddress, $0.count) }
        return
      }
    }
    let n = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    if n != text.count { throw TsukuError(.other, "cannot write audit log '\(path)': \(String(cString: strerror(errno)))") }
  }

  private func rotate() {
    unlink("\(path).\(keep)")
    for i in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(i)", "\(path).\(i + 1)") }
    rename(path, "\(path).1")
  }

  /// Every event, oldest first, from the rotated files and the current one.
  public func read(since: Date? = nil, name: String? = nil) -> [AuditEvent] {
    var out = [AuditEvent]()
    let files = stride(from: keep, through: 1, by: -1).map { "\(path).\($0)" } + [path]
    let dec = JSONDecoder()
    for f in files {
      guard let data = (try? FileIO.readFileIfPresent(f)) ?? nil else { continue }
      for line in data.split(separator: UInt8(ascii: "\n")) {
        guard let e = try? dec.decode(AuditEvent.self, from: Data(line)) else { continue }
        if let since, let t = Timestamp.parse(e.time), t < since { continue }
        if let name, e.name != name { continue }
        out.append(e)
      }
    }
    return out
  }

  /// Removes any `user:password@` part of a URL.
  static func redact(_ url: String) -> String {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
    let slash = url[scheme.upperBound...].firstIndex(of: "/") ?? url.endIndex
    if at < slash { return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...]) }
    return url
  }
}
