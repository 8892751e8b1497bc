/// The one error type of the project: a code that decides the exit status, a one-line message
/// that names the value at fault, and optional detail lines (for example each source tried).
public struct TsukuError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What kind of failure this is. A struct over a private enum, so new codes can be added.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private enum Base: Hashable, Sendable {
      case other, findings, notFound, integrity, unavailable, usage, conflict
    }
    private let base: Base
    private init(_ base: Base) { self.base = base }

    /// I/O, disk full, internal failure (exit 1).
    public static let other = Code(.other)
    /// The command finished but found problems (exit 2).
    public static let findings = Code(.findings)
    /// Every source answered that it has no such thing (exit 3).
    public static let notFound = Code(.notFound)
    /// Refused for integrity or trust: bad signature, hash mismatch, rollback, expiry (exit 4).
    public static let integrity = Code(.integrity)
    /// No source answered and nothing usable is cached (exit 5).
    public static let unavailable = Code(.unavailable)
    /// Bad arguments (exit 64).
    public static let usage = Code(.usage)
    /// Someone else changed the target first (exit 1): a publish lost a race.
    public static let conflict = Code(.conflict)

    /// The process exit status for this code, as DESIGN.md and the README list them.
    public var exitCode: Int32 {
      switch base {
      case .other, .conflict: 1
      case .findings: 2
      case .notFound: 3
      case .integrity: 4
      case .unavailable: 5
      case .usage: 64
      }
    }

    public var description: String {
      switch base {
      case .other: "other"
      case .findings: "findings"
      case .notFound: "not-found"
      case .integrity: "integrity"
      case .unavailable: "unavailable"
      case .usage: "usage"
      case .conflict: "conflict"
      }
    }
  }

  public var code: Code
  /// One line, lower case, values in quotes.
  public var message: String
  /// Extra lines printed indented under the message.
  public var details: [String]

  public init(_ code: Code, _ message: String, details: [String] = []) {
    self.code = code
    self.message = message
    self.details = details
  }

  public var description: String { message }

  /// The message with its detail lines, for stderr.
  public var detailed: String {
    ([message] + details.map { "  " + $0 }).joined(separator: "\n")
  }
}

extension TsukuError {
  static func io(_ what: String, _ path: String, errno code: Int32) -> TsukuError {
    TsukuError(.other, "\(what) '\(path)': \(String(cString: strerror(code)))")
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
