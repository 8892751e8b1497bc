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

  /// Why bytes were refused, set where the refusal is thrown: metrics and reports read this,
  /// never the message text. A struct over fixed names, so new reasons can be added.
  public struct Reason: Hashable, Sendable, CustomStringConvertible {
    /// The label metrics use (`tsuku_verification_failures_total{reason=...}`).
    public let label: String
    private init(_ label: String) { self.label = label }

    /// Bytes that do not hash to their name.
    public static let hashMismatch = Reason("hash_mismatch")
    /// A document without the threshold of valid signatures of its role.
    public static let badSignature = Reason("bad_signature")
    /// A version older than (or the same version with other content than) the trusted one.
    public static let rollback = Reason("rollback")
    /// A document past its expiry.
    public static let expired = Reason("expired")
    /// More bytes than the signed index or a limit allows.
    public static let tooLarge = Reason("too_large")
    /// Anything else that does not parse or check out.
    public static let malformed = Reason("malformed")
    /// A file that is a symbolic link where one is written, or not a regular file at all (a
    /// FIFO, a socket, a device, a folder): refused without following or reading it.
    public static let notRegularFile = Reason("not_regular_file")

    public var description: String { label }
  }

  public var code: Code
  /// One line, lower case, values in quotes.
  public var message: String
  /// Extra lines printed indented under the message.
  public var details: [String]
  /// Why, for refusals (`.integrity`); nil where no reason was given (read as `malformed`).
  public var reason: Reason?

  public init(_ code: Code, _ message: String, reason: Reason? = nil, details: [String] = []) {
    self.code = code
    self.message = message
    self.reason = reason
    self.details = details
  }

  public var description: String { message }

  /// The message with its detail lines, for stderr.
  public var detailed: String {
    ([message] + details.map { "  " + $0 }).joined(separator: "\n")
  }
}

extension TsukuError {
  /// A failed file operation: `<what> '<path>': <strerror>`, code `.other`.
  public static func io(_ what: String, _ path: String, errno code: Int32) -> TsukuError {
    TsukuError(.other, "\(what) '\(path)': \(String(cString: strerror(code)))")
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
