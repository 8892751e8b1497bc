import Foundation
import Store

/// The body of a log checkpoint, as C2SP tlog-checkpoint writes it: the origin line (the log's
/// name, from the root's `log` role), the tree size in decimal, the root hash in standard
/// base64, then optional extension lines; every line ends with a newline. It is the text of a
/// signed note (`SignedNote`), signed by the root's `log` keys.
public struct Checkpoint: Sendable, Hashable, CustomStringConvertible {
  /// The longest checkpoint text parsed.
  public static let maxText = 1 << 12

  public var origin: String
  public var size: UInt64
  public var rootHash: [UInt8]
  /// Extension lines, without their newlines.
  public var extensions: [String]

  public init(origin: String, size: UInt64, rootHash: [UInt8], extensions: [String] = []) {
    self.origin = origin
    self.size = size
    self.rootHash = rootHash
    self.extensions = extensions
  }

  /// The note text: `origin\nsize\nbase64(root)\n` and the extension lines.
  public var text: String {
    ([origin, String(size), Data(rootHash).base64EncodedString()] + extensions).map { $0 + "\n" }.joined()
  }

  /// `size 12 root 3f2a9c1e`: how messages name a checkpoint.
  public var description: String {
    "size \(size) root \(rootHash.prefix(4).map { String(format: "%02x", $0) }.joined())"
  }

  /// Parses a checkpoint text; `.integrity` for anything that is not one.
  /// The largest tree size read: 2^48 entries.
  public static let maxSize: UInt64 = 1 << 48

  public static func parse(_ text: String) throws -> Checkpoint {
    func bad(_ why: String) -> TsukuError { TsukuError(.integrity, "log checkpoint is malformed: \(why)") }
    guard text.utf8.count <= maxText else { throw bad("more than \(maxText) bytes") }
    guard text.hasSuffix("\n") else { throw bad("it does not end with a newline") }
    let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard lines.count >= 3 else { throw bad("it has \(lines.count) lines, at least 3 expected") }
    let origin = lines[0]
    guard !origin.isEmpty, !origin.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
      throw bad("empty or invalid origin line")
    }
    let s = lines[1]
    guard !s.isEmpty, s.count <= 20, s.allSatisfy({ $0.isASCII && $0.isNumber }), s == "0" || !s.hasPrefix("0"),
      let size = UInt64(s)
    else { throw bad("size '\(s.prefix(24))' is not a decimal number") }
    // Far past any real log, and far below where tree arithmetic on 64 bits would overflow.
    guard size <= Self.maxSize else { throw bad("size \(size) is larger than \(Self.maxSize)") }
    guard let root = Data(base64Encoded: lines[2]), root.count == Merkle.hashSize,
      root.base64EncodedString() == lines[2]
    else { throw bad("root hash '\(lines[2].prefix(48))' is not a base64 SHA-256") }
    let ext = Array(lines.dropFirst(3))
    guard ext.allSatisfy({ !$0.isEmpty }) else { throw bad("an empty extension line") }
    return Checkpoint(origin: origin, size: size, rootHash: [UInt8](root), extensions: ext)
  }
}
