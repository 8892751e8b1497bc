import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Many file paths under one folder in one buffer: a few bytes per path beyond its text,
/// instead of a string object each. Paths are added while it is built (by one thread) and
/// only read afterwards, from any thread.
public final class PathTable: @unchecked Sendable {
  /// The folder the paths are relative to.
  public let base: String
  private var bytes = [UInt8]()
  private var ends = [UInt32]()

  public init(base: String) { self.base = base }

  /// Adds `base/rel` and returns its index.
  public func add(_ rel: String) -> Int32 {
    bytes.append(contentsOf: rel.utf8)
    ends.append(UInt32(bytes.count))
    return Int32(ends.count - 1)
  }

  public var count: Int { ends.count }

  /// The path at `index`, relative to `base`.
  public func relative(_ index: Int32) -> String {
    let i = Int(index)
    let start = i == 0 ? 0 : Int(ends[i - 1])
    return String(decoding: bytes[start..<Int(ends[i])], as: UTF8.self)
  }

  /// The full path at `index`.
  public func path(_ index: Int32) -> String { base + "/" + relative(index) }

  /// Every index, ordered by the bytes of its path (for ASCII names, the order of the strings).
  public func sortedIndices() -> [Int32] {
    bytes.withUnsafeBufferPointer { b in
      func range(_ i: Int32) -> (Int, Int) {
        let k = Int(i)
        return (k == 0 ? 0 : Int(ends[k - 1]), Int(ends[k]))
      }
      return (0..<Int32(ends.count)).sorted { x, y in
        let (xs, xe) = range(x)
        let (ys, ye) = range(y)
        let n = min(xe - xs, ye - ys)
        let c = n == 0 ? 0 : memcmp(b.baseAddress! + xs, b.baseAddress! + ys, n)
        return c != 0 ? c < 0 : xe - xs < ye - ys
      }
    }
  }
}
