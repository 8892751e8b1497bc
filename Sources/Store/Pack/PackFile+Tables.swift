import Foundation

extension PackFile {
  /// A sorted table of `count` entries at `tableStart` in the file at `path`, for the blobs of
  /// a data region of `dataLength` bytes that lands at `base` in the merged data region;
  /// `what` names the pack in messages.
  struct TableRun {
    var path: String
    var what: String
    var tableStart: Int
    var count: Int
    var dataLength: Int
    var base: Int
  }

  /// One input table read a slice at a time, each entry decoded and checked by `PackTable` as
  /// it goes (bounds, strict order).
  private struct TableCursor {
    let fd: Int32
    let path: String
    let what: String
    let tableStart: Int
    let count: Int
    let dataLength: Int
    let base: Int
    var next = 0
    var buffer: [UInt8]
    var bufferStart = 0
    var bufferCount = 0
    var current: Entry?
    var order: PackTable.Order

    init(_ run: TableRun) throws {
      guard run.count >= 0, run.count <= Pack.maxEntries, run.tableStart >= 0, run.dataLength >= 0, run.base >= 0 else {
        throw PackTable.malformed(run.what, "table of \(run.count) entries for \(run.dataLength) bytes of data")
      }
      self.fd = try FileIO.open(run.path, O_RDONLY, failing: "cannot read")
      self.path = run.path
      self.what = run.what
      self.tableStart = run.tableStart
      self.count = run.count
      self.dataLength = run.dataLength
      self.base = run.base
      self.order = PackTable.Order(what: run.what)
      self.buffer = [UInt8](repeating: 0, count: 256 * 44)
    }

    /// Moves to the next entry (nil at the end).
    mutating func advance() throws {
      if next >= count {
        current = nil
        return
      }
      if next >= bufferStart + bufferCount {
        let n = min(256, count - next)
        guard try FileIO.read(fd, &buffer, at: tableStart + next * 44, count: n * 44, path) == n * 44 else {
          throw TsukuError(.integrity, "\(what) is malformed: short table", reason: .malformed)
        }
        (bufferStart, bufferCount) = (next, n)
      }
      let at = (next - bufferStart) * PackTable.entrySize
      let (index, length, name) = (next, dataLength, what)
      let d = try buffer.withUnsafeBytes { b in
        try PackTable.entry(b, at: at, index: index, dataLength: length, what: name)
      }
      try order.check(d.id, index: next)
      let e = Entry(id: d.id, offset: d.offset, size: d.size)
      current = e
      next += 1
    }
  }

  /// Visits the distinct ids of the inputs' tables in order, with their offsets in the merged
  /// data region (the first input holding an id wins).
  static func mergeTables(_ inputs: [TableRun], _ visit: (ObjectID, Int, Int) throws -> Void) throws {
    var cursors = [TableCursor]()
    defer { for c in cursors { close(c.fd) } }
    for i in inputs {
      cursors.append(try TableCursor(i))
      try cursors[cursors.count - 1].advance()
    }
    // A binary min-heap of cursor positions, ordered by (current id, input position).
    func less(_ a: Int, _ b: Int) -> Bool {
      let x = cursors[a].current!.id
      let y = cursors[b].current!.id
      return x < y || (x == y && a < b)
    }
    var heap = cursors.indices.filter { cursors[$0].current != nil }
    func down(_ from: Int) {
      var i = from
      while true {
        let l = 2 * i + 1
        if l >= heap.count { return }
        var m = l
        if l + 1 < heap.count, less(heap[l + 1], heap[l]) { m = l + 1 }
        if !less(heap[m], heap[i]) { return }
        heap.swapAt(i, m)
        i = m
      }
    }
    for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { down(i) }
    var last: ObjectID?
    while let top = heap.first {
      let e = cursors[top].current!
      if last != e.id {
        try visit(e.id, try PackTable.rebase(e.offset, on: cursors[top].base, what: cursors[top].what), e.size)
        last = e.id
      }
      try cursors[top].advance()
      if cursors[top].current == nil {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
      }
      down(0)
    }
  }
}
