import Foundation
import Store

/// `TSUKU_GIT_HISTORY_DAYS`: how far back a git source looks for blobs that have left its tip,
/// in days counted back from its newest commit (not from today); 0 means all history.
public enum GitHistoryDays {
  /// The window when the variable is unset or empty.
  public static let standard = 90

  /// The window the environment asks for; a usage error for anything but a whole number of
  /// days from 0 to 36500.
  public static func fromEnvironment(_ env: [String: String] = ProcessEnvironment.current) throws -> Int {
    guard let s = env["TSUKU_GIT_HISTORY_DAYS"], !s.isEmpty else { return standard }
    let t = s.trimmingCharacters(in: .whitespaces)
    guard !t.isEmpty, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(t), n <= 36500 else {
      throw TsukuError(
        .usage, "invalid TSUKU_GIT_HISTORY_DAYS '\(s)': expected a whole number of days from 0 (all history) to 36500")
    }
    return n
  }
}
