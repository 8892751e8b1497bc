import Foundation

extension Array {
  /// The index ranges of consecutive batches of at most `maxBytes` (by `size`) and at most
  /// `maxCount` elements; an element larger than `maxBytes` makes a batch alone. The one way
  /// fetches are batched (a sync's packs and blobs, validation's pinned objects) and a
  /// publish fills its packs.
  public func batchRanges(maxBytes: Int, maxCount: Int = .max, size: (Element) -> Int) -> [Range<Int>] {
    var out = [Range<Int>]()
    var start = 0
    var bytes = 0
    for (i, item) in enumerated() {
      let n = size(item)
      if i > start, bytes + n > maxBytes || i - start >= maxCount {
        out.append(start..<i)
        (start, bytes) = (i, 0)
      }
      bytes += n
    }
    if start < count { out.append(start..<count) }
    return out
  }

  /// The elements cut into the batches `batchRanges` gives.
  public func batched(maxBytes: Int, maxCount: Int = .max, size: (Element) -> Int) -> [[Element]] {
    batchRanges(maxBytes: maxBytes, maxCount: maxCount, size: size).map { Array(self[$0]) }
  }
}
