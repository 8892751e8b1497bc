import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// Reads a file line by line in fixed chunks, so a large audit log or side file is streamed,
/// never loaded whole. A line longer than `maxLine` is skipped (no line the project writes
/// comes near it); a missing or unreadable file has no lines.
enum LineReader {
  static let chunk = 256 << 10
  static let maxLine = 4 << 20

  static func forEachLine(_ path: String, maxLine: Int = LineReader.maxLine, _ body: (Data) throws -> Void) rethrows {
    guard let fd = try? FileIO.openIfPresent(path, O_RDONLY, failing: "cannot read") else { return }
    defer { close(fd) }
    var carry = Data()
    var skipping = false
    var buf = [UInt8](repeating: 0, count: chunk)
    while true {
      let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, chunk) }
      if n < 0, errno == EINTR { continue }
      if n <= 0 { break }
      var start = 0
      for i in 0..<n where buf[i] == UInt8(ascii: "\n") {
        if !skipping {
          carry.append(contentsOf: buf[start..<i])
          if !carry.isEmpty { try body(carry) }
        }
        carry.removeAll(keepingCapacity: true)
        skipping = false
        start = i + 1
      }
      if !skipping { carry.append(contentsOf: buf[start..<n]) }
      if carry.count > maxLine { (carry, skipping) = (Data(), true) }
    }
    if !skipping, !carry.isEmpty { try body(carry) }
  }
}
