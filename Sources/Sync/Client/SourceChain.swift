import Foundation
import Store

/// An ordered list of sources, configured like GOPROXY: `a,b|c`.
///
/// After a `,` the next source is tried only when this one does not have the thing (404, 410,
/// absent); after a `|` it is tried on any failure (refused, timeout, 5xx). Bytes that fail
/// verification always move on to the next source, whatever the separator, and that source is
/// skipped for the rest of the command. `off` is the empty list.
public struct SourceChain: Sendable, Equatable, CustomStringConvertible {
  public struct Entry: Sendable, Equatable {
    public var url: String
    /// True when a `|` follows this source: the next one is tried on any failure.
    public var anyError: Bool
    public init(url: String, anyError: Bool = false) {
      self.url = url
      self.anyError = anyError
    }
  }

  public var entries: [Entry]
  /// Why an empty chain is empty, for the command that needs a source (nil: `--offline` or
  /// `TSUKU_SOURCES=off`).
  public var emptyReason: String?

  /// Sources separated by `,`.
  public init(_ urls: [String]) { entries = urls.map { Entry(url: $0) } }
  public init(entries: [Entry]) { self.entries = entries }

  public static let off = SourceChain([])

  /// No source configured and no default (an installed binary before `tsuku init`): what needs
  /// no source still works (the cache, the built-in critical set); what does says how to
  /// choose a registry.
  public static let unconfigured: SourceChain = {
    var c = SourceChain([])
    c.emptyReason = DefaultRegistry.noSourceMessage
    return c
  }()

  /// Parses `a,b|c` (whitespace around separators is ignored; `off` means none).
  public static func parse(_ text: String) throws -> SourceChain {
    let t = text.trimmedASCII
    if t == "off" || t.isEmpty { return .off }
    var entries = [Entry]()
    var current = ""
    for ch in t {
      if ch == "," || ch == "|" {
        let url = current.trimmedASCII
        if url.isEmpty { throw TsukuError(.usage, "invalid source list '\(text)': empty source before '\(ch)'") }
        entries.append(Entry(url: url, anyError: ch == "|"))
        current = ""
      } else {
        current.append(ch)
      }
    }
    let last = current.trimmedASCII
    if last.isEmpty { throw TsukuError(.usage, "invalid source list '\(text)': it ends with a separator") }
    entries.append(Entry(url: last))
    return SourceChain(entries: entries)
  }

  public var urls: [String] { entries.map(\.url) }
  public var isEmpty: Bool { entries.isEmpty }

  public var description: String {
    if entries.isEmpty { return "off" }
    var s = ""
    for (i, e) in entries.enumerated() {
      s += e.url
      if i < entries.count - 1 { s += e.anyError ? "|" : "," }
    }
    return s
  }
}

/// Walks a chain for one command, remembering sources that served bad bytes.
final class SourceRunner {
  let chain: SourceChain
  let warn: (String) -> Void
  private(set) var skipped = [String: String]()

  init(chain: SourceChain, warn: @escaping (String) -> Void) {
    self.chain = chain
    self.warn = warn
  }

  /// The first source's answer, following the separators; throws one error with every
  /// source tried as detail lines.
  func first<T>(_ what: String, _ body: (String) throws -> T) throws -> T {
    var failures = [(String, TsukuError)]()
    for e in chain.entries {
      if let why = skipped[e.url] {
        failures.append((e.url, TsukuError(.integrity, "skipped: earlier in this command it served bad data (\(why))")))
        continue
      }
      do {
        return try body(e.url)
      } catch let err as TsukuError {
        failures.append((e.url, err))
        if err.code == .notFound { continue }
        if err.code == .integrity {
          skipped[e.url] = err.message
          if chain.entries.count > 1 { warn("source '\(e.url)' failed verification and is skipped: \(err.message)") }
          continue
        }
        if e.anyError { continue }
        break
      }
    }
    throw SourceRunner.combine(failures, what: what)
  }

  /// One error for a list of per-source failures: integrity if every source lied, not found
  /// if every source lacked it, otherwise unavailable.
  static func combine(_ failures: [(String, TsukuError)], what: String) -> TsukuError {
    if failures.count == 1 {
      let (url, e) = failures[0]
      return TsukuError(e.code, e.message, reason: e.reason, details: e.details.isEmpty ? [] : e.details.map { "\(url): \($0)" })
    }
    let codes = Set(failures.map { $0.1.code })
    let code: TsukuError.Code =
      failures.isEmpty ? .unavailable
      : codes == [.integrity] ? .integrity : codes == [.notFound] ? .notFound
      : codes.isSubset(of: [.integrity, .notFound]) ? .integrity : .unavailable
    let tried = failures.count == 1 ? "1 source tried" : "\(failures.count) sources tried"
    // Every source refused for the same reason: the summary keeps it.
    let reasons = Set(failures.map { $0.1.reason })
    return TsukuError(
      code, "\(what) (\(tried))", reason: reasons.count == 1 ? reasons.first! : nil,
      details: failures.map { "\($0.0): \($0.1.message)" })
  }
}
