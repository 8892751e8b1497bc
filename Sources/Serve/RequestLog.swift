import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// One line per request on stderr: `GET /recipes/f/fzf.toml 200 1234 0.21ms`, or with
/// `json` one object a line. Also the server's own notices. Request lines are gathered and
/// written together (at 16 KiB, or within 100 ms: a write(2) per request costs a fifth of the
/// system calls of an answer); a notice, and `flush()` at exit, write everything at once.
public struct RequestLog: Sendable {
  public let json: Bool
  private let buffer = LineBuffer()

  public init(json: Bool) { self.json = json }

  /// Writes what is gathered.
  public func flush() { buffer.flush() }

  func request(method: String, path: String, status: Int, bytes: Int, seconds: Double, remote: @autoclosure () -> String) {
    let ms = (seconds * 1e6).rounded() / 1e3
    if json {
      buffer.append(
        "{\"time\":\"\(Self.timestamp())\",\"method\":\(Self.quote(method)),\"path\":\(Self.quote(path)),\"status\":\(status),\"bytes\":\(bytes),\"duration_ms\":\(ms),\"remote\":\(Self.quote(remote()))}"
      )
    } else {
      buffer.append("\(Self.printable(method)) \(Self.printable(path)) \(status) \(bytes) \(ms)ms")
    }
  }

  public func info(_ s: String) {
    emit(json ? "{\"time\":\"\(Self.timestamp())\",\"level\":\"info\",\"message\":\(Self.quote(s))}" : s)
  }

  public func warn(_ s: String) {
    emit(json ? "{\"time\":\"\(Self.timestamp())\",\"level\":\"warning\",\"message\":\(Self.quote(s))}" : "warning: " + s)
  }

  private func emit(_ line: String) {
    buffer.flush()
    var l = line
    l.append("\n")
    Self.write(l)
  }

  static func write(_ text: String) {
    var l = text
    l.withUTF8 { p in
      var off = 0
      while off < p.count {
        let n = Glibc.write(2, p.baseAddress! + off, p.count - off)
        if n <= 0 { break }
        off += n
      }
    }
  }

  static func timestamp() -> String {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    var tmv = tm()
    var secs = t.tv_sec
    gmtime_r(&secs, &tmv)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour,
      tmv.tm_min, tmv.tm_sec, t.tv_nsec / 1_000_000)
  }

  /// A request path as text: control bytes, spaces and non-ASCII escaped, so one request is
  /// always one line however hostile its path.
  static func printable(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\\") }) { return s }
    var out = ""
    for b in s.utf8 {
      if b > 0x20 && b < 0x7f && b != UInt8(ascii: "\\") { out.unicodeScalars.append(UnicodeScalar(b)) }
      else { out += String(format: "\\x%02x", b) }
    }
    return out
  }

  static func quote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case _ where u.value < 0x20 || u.value >= 0x7f: out += String(format: "\\u%04x", min(u.value, 0xfffd))
      default: out.unicodeScalars.append(u)
      }
    }
    return out + "\""
  }
}

/// Request lines waiting to be written: flushed at 16 KiB, by the next line once 100 ms have
/// passed, and by a thread that wakes every 100 ms, so a quiet server writes its last lines
/// soon.
final class LineBuffer: @unchecked Sendable {
  private var pending = ""
  private var lastFlush = DispatchTime.now().uptimeNanoseconds
  private let lock = NSLock()
  private var flusher: Thread?

  func append(_ line: String) {
    lock.lock()
    pending += line
    pending += "\n"
    let now = DispatchTime.now().uptimeNanoseconds
    var out: String?
    if pending.utf8.count >= 16384 || now - lastFlush > 100_000_000 {
      out = pending
      pending = ""
      lastFlush = now
    }
    if flusher == nil {
      let t = Thread { [weak self] in
        while let me = self {
          Thread.sleep(forTimeInterval: 0.1)
          me.flush()
        }
      }
      t.start()
      flusher = t
    }
    lock.unlock()
    if let out { RequestLog.write(out) }
  }

  func flush() {
    lock.lock()
    let out = pending
    pending = ""
    lastFlush = DispatchTime.now().uptimeNanoseconds
    lock.unlock()
    if !out.isEmpty { RequestLog.write(out) }
  }
}
