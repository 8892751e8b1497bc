/// Items cut in order into consecutive runs of at most `maxBytes` together (an item larger than
/// that is a run of its own): how a publish fills packs, and how a sync can batch its fetches.
enum ByteBatches {
  /// The runs, as ranges of positions in `sizes`.
  static func ranges(_ sizes: some Sequence<Int>, maxBytes: Int) -> [Range<Int>] {
    var out = [Range<Int>]()
    var start = 0
    var end = 0
    var bytes = 0
    for size in sizes {
      if end > start && bytes + size > maxBytes {
        out.append(start..<end)
        start = end
        bytes = 0
      }
      bytes += size
      end += 1
    }
    if start < end { out.append(start..<end) }
    return out
  }
}
