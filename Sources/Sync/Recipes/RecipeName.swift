import Foundation
import Store

/// Recipe names: what may appear in the index and on the command line.
public enum RecipeName {
  /// Accepts `[a-z0-9][a-z0-9._+-]*`, at most 128 characters, with no `..`: a name can never
  /// be a path.
  public static func validate(_ name: String) throws {
    func fail(_ why: String) -> TsukuError {
      // Only a refused name is shown, so only then is it made printable.
      let shown = name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
      return TsukuError(.usage, "invalid recipe name '\(shown.prefix(140))': \(why)")
    }
    let u = Array(name.utf8)
    if u.isEmpty { throw fail("empty") }
    if u.count > 128 { throw fail("longer than 128 characters") }
    for c in u {
      let ok =
        (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
        || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
      if !ok { throw fail("only a-z, 0-9, '.', '_', '-' and '+' are allowed") }
    }
    if !((u[0] >= 0x61 && u[0] <= 0x7a) || (u[0] >= 0x30 && u[0] <= 0x39)) {
      throw fail("must start with a letter or digit")
    }
    for i in 1..<u.count where u[i] == UInt8(ascii: ".") && u[i - 1] == UInt8(ascii: ".") {
      throw fail("must not contain '..'")
    }
  }
}
