import Foundation

extension Array {
  /// The elements cut into consecutive batches of at most `maxBytes` (by `size`) and at most
  /// `maxCount` elements; an element larger than `maxBytes` makes a batch alone. The one way
  /// fetches are batched: a sync's packs and blobs, validation's pinned objects.
  func batched(maxBytes: Int, maxCount: Int = .max, size: (Element) -> Int) -> [[Element]] {
    var out = [[Element]]()
    var current = [Element]()
    var bytes = 0
    for item in self {
      let n = size(item)
      if !current.isEmpty, bytes + n > maxBytes || current.count >= maxCount {
        out.append(current)
        (current, bytes) = ([], 0)
      }
      current.append(item)
      bytes += n
    }
    if !current.isEmpty { out.append(current) }
    return out
  }
}
