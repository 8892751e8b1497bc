import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// One line per request on stderr: `GET /recipes/f/fzf.toml 200 1234 0.21ms`, or with
/// `json` one object a line. Also the server's own notices. Each line is one write(2).
public struct RequestLog: Sendable {
  public let json: Bool

  public init(json: Bool) { self.json = json }

  func request(method: String, path: String, status: Int, bytes: Int, seconds: Double, remote: @autoclosure () -> String) {
    let ms = (seconds * 1e6).rounded() / 1e3
    if json {
      emit(
        "{\"time\":\"\(Self.timestamp())\",\"method\":\(Self.quote(method)),\"path\":\(Self.quote(path)),\"status\":\(status),\"bytes\":\(bytes),\"duration_ms\":\(ms),\"remote\":\(Self.quote(remote()))}"
      )
    } else {
      emit("\(Self.printable(method)) \(Self.printable(path)) \(status) \(bytes) \(ms)ms")
    }
  }

  public func info(_ s: String) {
    emit(json ? "{\"time\":\"\(Self.timestamp())\",\"level\":\"info\",\"message\":\(Self.quote(s))}" : s)
  }

  public func warn(_ s: String) {
    emit(json ? "{\"time\":\"\(Self.timestamp())\",\"level\":\"warning\",\"message\":\(Self.quote(s))}" : "warning: " + s)
  }

  private func emit(_ line: String) {
    var l = line
    l.append("\n")
    l.withUTF8 { p in
      var off = 0
      while off < p.count {
        let n = write(2, p.baseAddress! + off, p.count - off)
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
