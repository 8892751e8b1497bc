import Foundation

/// A mutable, named document of the store layout. Only these names exist besides the blobs, so
/// no caller can make a backend read or write any other path.
public enum DocumentName: Hashable, Sendable, CustomStringConvertible {
  /// `index.json`: the signed envelope, the only name whose content changes.
  case index
  /// `root/<N>.root.json`: root version N of the trust chain (immutable once written).
  case root(Int)
  /// `index/<N>.index.json`: the `index.json` that first carried index version N, kept by
  /// publish so retention can keep the blobs of the last K versions (format.md §1).
  case archivedIndex(Int)
  /// A file of the transparency log under `log/`: `log/checkpoint` (replaced by each write),
  /// `log/tile/...` and `log/changes/<sha256>` (written once, never with other content). A
  /// `LogPath` is only ever a valid one, so no log name can leave `log/`.
  case log(LogPath)

  /// The path inside the layout.
  public var path: String {
    switch self {
    case .index: "index.json"
    case .root(let n): "root/\(n).root.json"
    case .archivedIndex(let n): "index/\(n).index.json"
    case .log(let p): p.path
    }
  }

  /// The log's checkpoint.
  public static let checkpoint = DocumentName.log(LogPath("log/checkpoint")!)

  /// The log file at `path`; `.integrity` for a path that is not one (never a traversal).
  public static func logFile(_ path: String) throws -> DocumentName {
    guard let p = LogPath(path) else { throw TsukuError(.integrity, "'\(path.prefix(120))' is not a log file name") }
    return .log(p)
  }

  /// A log file other than the checkpoint: its content never changes once written, so a
  /// writer creates it only where absent (or equal), and a racing writer that would give it
  /// other bytes fails before its `index.json`.
  public var isWriteOnce: Bool {
    if case .log(let p) = self { return p.path != "log/checkpoint" }
    return false
  }

  public var description: String { path }

  /// Parses a layout path back into a name; nil for anything that is not one.
  public init?(path: String) {
    if path == "index.json" {
      self = .index
      return
    }
    if path.hasPrefix("log/") {
      guard let p = LogPath(path) else { return nil }
      self = .log(p)
      return
    }
    let archived = path.hasPrefix("index/") && path.hasSuffix(".index.json")
    guard archived || (path.hasPrefix("root/") && path.hasSuffix(".root.json")) else { return nil }
    let digits = archived ? path.dropFirst(6).dropLast(11) : path.dropFirst(5).dropLast(10)
    guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
      digits.first != "0", let n = Int(digits)
    else { return nil }
    self = archived ? .archivedIndex(n) : .root(n)
  }

  /// `log/checkpoint`, `log/changes/<64 lower-case hex>`, or a C2SP tile path under `log/`:
  /// `tile/<0-7 or entries>/` then three-digit groups, all but the last prefixed with `x`,
  /// then an optional `.p/<1-255>`. Nothing else (no `..`, no empty part) is a log path.
  static func isLogPath(_ path: String) -> Bool {
    if path == "log/checkpoint" { return true }
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.first == "log" else { return false }
    func digits(_ s: Substring, _ n: Int) -> Bool { s.count == n && s.allSatisfy { $0 >= "0" && $0 <= "9" } }
    if parts.count == 3, parts[1] == "changes" {
      return parts[2].count == 64 && parts[2].allSatisfy { ($0 >= "0" && $0 <= "9") || ($0 >= "a" && $0 <= "f") }
    }
    guard parts.count >= 4, parts.count <= 12, parts[1] == "tile",
      parts[2] == "entries" || (parts[2].count == 1 && digits(parts[2], 1) && parts[2] < "8")
    else { return false }
    var groups = parts.dropFirst(3)
    if groups.count >= 2, groups[groups.endIndex - 2].hasSuffix(".p") {
      let w = groups.last!
      guard !w.isEmpty, w.count <= 3, digits(w, w.count), w.first != "0", Int(w)! < 256 else { return false }
      groups = groups.dropLast()
      groups[groups.endIndex - 1] = groups.last!.dropLast(2)
    }
    for (i, g) in groups.enumerated() {
      let last = i == groups.count - 1
      if last ? !digits(g, 3) : !(g.first == "x" && digits(g.dropFirst(), 3)) { return false }
    }
    return true
  }
}

/// The path of a transparency log file, valid by construction (`DocumentName.isLogPath`).
public struct LogPath: Hashable, Sendable {
  public let path: String
  public init?(_ path: String) {
    guard DocumentName.isLogPath(path) else { return nil }
    self.path = path
  }
}
