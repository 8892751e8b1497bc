import Foundation

/// Builds packs (the layout `Pack` reads) from blob sources without holding their bytes: the
/// table comes from the names and sizes, the pack's name from one pass over the blobs read one
/// at a time, and the bytes are assembled only when a backend writes the pack. For the same
/// blobs the bytes are exactly those of `Pack.build`.
public enum PackBuilder {
  /// The pack of `members` (duplicates stored once) as a source.
  public static func source(_ members: [BlobSource]) throws -> BlobSource {
    try source(of: BlobList(members), at: Array(members.indices))
  }

  /// The pack of the sources of `list` at `indices` (duplicates stored once) as a source.
  /// Reads each member once, now, checked against its name; `load` reads them again and checks
  /// the whole pack's hash. The source keeps the list and the positions, not bytes.
  public static func source(of list: BlobList, at indices: [Int]) throws -> BlobSource {
    let all = list.items
    var order = indices.sorted { all[$0].id < all[$1].id }
    order = order.enumerated().filter { $0.offset == 0 || all[order[$0.offset - 1]].id != all[$0.element].id }.map(
      \.element)
    let members = order.map { Int32($0) }
    let head = header(all, members)
    var hasher = SHA256()
    hasher.update(head)
    for i in members { hasher.update(try all[Int(i)].load()) }
    let size = head.count + members.reduce(0) { $0 + all[Int($1)].size }
    return BlobSource(id: hasher.finish(), size: size, origin: "a pack of \(members.count) blobs") {
      let all = list.items
      var out = Data(capacity: size)
      out.append(header(all, members))
      for i in members { out.append(try all[Int(i)].loadUnchecked()) }
      return out
    }
  }

  /// The magic, the count and the table of `members` of `all` (ordered by id, no duplicates).
  static func header(_ all: [BlobSource], _ members: [Int32]) -> Data {
    var out = Data(capacity: 12 + 44 * members.count)
    out.append(contentsOf: Pack.magic)
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).bigEndian) { out.append(contentsOf: $0) } }
    func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).bigEndian) { out.append(contentsOf: $0) } }
    u32(members.count)
    var offset = 0
    for i in members {
      let m = all[Int(i)]
      out.append(contentsOf: m.id.bytes)
      u64(offset)
      u32(m.size)
      offset += m.size
    }
    return out
  }
}

/// Sources that packs made of them refer to by position: appending to the list after the
/// packs were made copies nothing (a pack holds the list, not a copy of it). Appended to only
/// while nothing reads it (before the packs are hashed or written).
public final class BlobList: @unchecked Sendable {
  public private(set) var items: [BlobSource]

  public init(_ items: [BlobSource] = []) { self.items = items }

  public func reserve(_ count: Int) { items.reserveCapacity(count) }

  public func append(contentsOf more: [BlobSource]) { items.append(contentsOf: more) }

  public func append(_ source: BlobSource) { items.append(source) }

  /// Empties the list and returns what it held (without a copy when nothing else holds it).
  public func take() -> [BlobSource] {
    let out = items
    items = []
    return out
  }
}
