#if canImport(Glibc)
  import Glibc
#endif

/// The process's environment as a dictionary, read from `environ`: the same names and values
/// as `ProcessInfo.processInfo.environment` (a name given twice keeps its first value, as
/// `getenv` does), built without Foundation, whose first use of that dictionary costs every
/// command a tenth of a millisecond of runtime type lookups (docs/architecture.md, "Start-up").
public enum ProcessEnvironment {
  public static var current: [String: String] {
    var out = [String: String]()
    var p = environ
    while let entry = p.pointee {
      let s = String(cString: entry)
      if let eq = s.utf8.firstIndex(of: UInt8(ascii: "=")) {
        let name = String(s[..<eq])
        if out[name] == nil { out[name] = String(s[s.utf8.index(after: eq)...]) }
      }
      p += 1
    }
    return out
  }
}

extension StringProtocol {
  /// Without leading and trailing ASCII spaces, tabs and line breaks: what settings, source
  /// lists and units are trimmed of (Foundation's `trimmingCharacters(in:)` goes through
  /// NSString, whose first use costs a start-up a tenth of a millisecond).
  public var trimmedASCII: String {
    let u = Array(utf8)
    func space(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C }
    guard let first = u.firstIndex(where: { !space($0) }), let last = u.lastIndex(where: { !space($0) }) else { return "" }
    return String(decoding: u[first...last], as: UTF8.self)
  }
}
