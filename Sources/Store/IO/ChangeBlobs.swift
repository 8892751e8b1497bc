import Foundation

/// Positions of the first copy of each name in `sources`: a publish's own list has no
/// duplicates, but a backend must not write one twice. Sorting positions costs 4 bytes a
/// blob, where a set of names would cost about 40.
public func firstCopies(_ sources: [BlobSource]) -> [Int32] {
  var order = (0..<Int32(sources.count)).map { $0 }
  order.sort { a, b in
    let (x, y) = (sources[Int(a)].id, sources[Int(b)].id)
    return x != y ? x < y : a < b
  }
  var duplicate = [Bool](repeating: false, count: sources.count)
  for k in order.indices.dropFirst() where sources[Int(order[k])].id == sources[Int(order[k - 1])].id {
    duplicate[Int(order[k])] = true
  }
  return (0..<Int32(sources.count)).filter { !duplicate[Int($0)] }
}

/// The blobs of a change, each name once: its sources (by position, no copy) and then its
/// in-memory objects; `duplicates` counts the copies left out.
public struct ChangeBlobs: RandomAccessCollection, Sendable {
  public let sources: [BlobSource]
  public let unique: [Int32]
  public let objects: [BlobSource]
  public let duplicates: Int

  public init(_ change: StoreChange, sources: [BlobSource]) {
    self.sources = sources
    unique = firstCopies(sources)
    var dups = sources.count - unique.count
    var extra = [BlobSource]()
    var seen = Set<ObjectID>()
    // A publish adds one object (the tree) to many sources: a scan is cheaper than a set.
    let sourceIDs: Set<ObjectID>? = change.objects.count > 16 && !sources.isEmpty ? Set(sources.map(\.id)) : nil
    for data in change.objects {
      let s = BlobSource(data)
      let inSources = sourceIDs.map { $0.contains(s.id) } ?? sources.contains { $0.id == s.id }
      if inSources || !seen.insert(s.id).inserted { dups += 1 } else { extra.append(s) }
    }
    objects = extra
    duplicates = dups
  }

  public var startIndex: Int { 0 }
  public var endIndex: Int { unique.count + objects.count }
  public subscript(position: Int) -> BlobSource {
    position < unique.count ? sources[Int(unique[position])] : objects[position - unique.count]
  }
}
