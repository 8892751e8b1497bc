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
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 1)
    defer { buf.deallocate() }
    while true {
      let n = read(fd, buf.baseAddress, chunk)
      if n < 0, errno == EINTR { continue }
      if n <= 0 { break }
      var start = 0
      while start < n, let nl = memchr(buf.baseAddress! + start, Int32(UInt8(ascii: "\n")), n - start) {
        let end = buf.baseAddress!.distance(to: nl)
        if !skipping {
          carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[start..<end]))
          if !carry.isEmpty { try body(carry) }
        }
        carry.removeAll(keepingCapacity: true)
        skipping = false
        start = end + 1
      }
      if !skipping { carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[start..<n])) }
      if carry.count > maxLine { (carry, skipping) = (Data(), true) }
    }
    if !skipping, !carry.isEmpty { try body(carry) }
  }
}
