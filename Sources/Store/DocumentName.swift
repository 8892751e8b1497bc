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

  /// The path inside the layout.
  public var path: String {
    switch self {
    case .index: "index.json"
    case .root(let n): "root/\(n).root.json"
    case .archivedIndex(let n): "index/\(n).index.json"
    }
  }

  public var description: String { path }

  /// Parses a layout path back into a name; nil for anything that is not one.
  public init?(path: String) {
    if path == "index.json" {
      self = .index
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
}
