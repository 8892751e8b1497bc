import Foundation
import Store

/// The Merkle tree of RFC 9162 §2.1 (the hashing of Certificate Transparency and Go's
/// checksum database): a leaf hashes as `SHA-256(0x00 || data)`, an interior node as
/// `SHA-256(0x01 || left || right)`, the tree of `n` leaves splits at the largest power of two
/// below `n`. Pure functions over hashes: no I/O; `TileLog` reads the hashes from tiles.
public enum Merkle {
  /// Every hash of the tree is a SHA-256 digest.
  public static let hashSize = 32

  /// The hash of a tree with no leaves: SHA-256 of the empty string (RFC 9162 §2.1.1).
  public static let emptyRoot: [UInt8] = SHA256.hash([UInt8]()).bytes

  /// `SHA-256(0x00 || data)`.
  public static func leafHash(_ data: [UInt8]) -> [UInt8] {
    SHA256.hash([0] + data).bytes
  }

  /// `SHA-256(0x01 || left || right)`.
  public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
    var input = [UInt8](repeating: 1, count: 1)
    input.reserveCapacity(1 + left.count + right.count)
    input += left
    input += right
    return SHA256.hash(input).bytes
  }

  /// The largest power of two strictly below `n` (n > 1): where RFC 9162 splits a tree.
  static func split(_ n: UInt64) -> UInt64 {
    var k: UInt64 = 1
    while k << 1 < n { k <<= 1 }
    return k
  }

  /// MTH over leaf hashes (RFC 9162 §2.1.1).
  public static func rootHash(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
    switch leaves.count {
    case 0: return emptyRoot
    case 1: return leaves.first!
    default:
      let k = Int(split(UInt64(leaves.count)))
      let mid = leaves.startIndex + k
      return nodeHash(rootHash(leaves[..<mid]), rootHash(leaves[mid...]))
    }
  }

  /// The hash of leaves `range` of a tree, given the hash of any complete aligned subtree
  /// (`complete(level, index)`: the node over leaves `index << level ..< (index + 1) << level`).
  /// The ranges the proofs below ask for always split into such subtrees.
  public static func rangeHash(
    _ range: Range<UInt64>, complete: (_ level: Int, _ index: UInt64) throws -> [UInt8]
  ) rethrows -> [UInt8] {
    let n = range.count
    if n == 0 { return emptyRoot }
    if n & (n - 1) == 0 && range.lowerBound % UInt64(n) == 0 {
      let level = UInt64(n).trailingZeroBitCount
      return try complete(level, range.lowerBound >> UInt64(level))
    }
    let k = split(UInt64(n))
    let mid = range.lowerBound + k
    return nodeHash(
      try rangeHash(range.lowerBound..<mid, complete: complete), try rangeHash(mid..<range.upperBound, complete: complete))
  }

  /// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1,
  /// PATH), from the hashes of ranges of leaves.
  public static func inclusionProof(
    index: UInt64, size: UInt64, hash: (Range<UInt64>) throws -> [UInt8]
  ) rethrows -> [[UInt8]] {
    try path(index, 0..<size, hash)
  }

  private static func path(
    _ m: UInt64, _ r: Range<UInt64>, _ hash: (Range<UInt64>) throws -> [UInt8]
  ) rethrows -> [[UInt8]] {
    let n = UInt64(r.count)
    guard n > 1 else { return [] }
    let k = split(n)
    let mid = r.lowerBound + k
    if m < k { return try path(m, r.lowerBound..<mid, hash) + [hash(mid..<r.upperBound)] }
    return try path(m - k, mid..<r.upperBound, hash) + [hash(r.lowerBound..<mid)]
  }

  /// The consistency proof from the tree of `old` leaves to the tree of `size` leaves
  /// (RFC 9162 §2.1.4.1, PROOF and SUBPROOF), from the hashes of ranges of leaves.
  public static func consistencyProof(
    old: UInt64, size: UInt64, hash: (Range<UInt64>) throws -> [UInt8]
  ) rethrows -> [[UInt8]] {
    guard old > 0, old < size else { return [] }
    return try subproof(old, 0..<size, true, hash)
  }

  private static func subproof(
    _ m: UInt64, _ r: Range<UInt64>, _ complete: Bool, _ hash: (Range<UInt64>) throws -> [UInt8]
  ) rethrows -> [[UInt8]] {
    let n = UInt64(r.count)
    if m == n { return complete ? [] : [try hash(r)] }
    let k = split(n)
    let mid = r.lowerBound + k
    if m <= k { return try subproof(m, r.lowerBound..<mid, complete, hash) + [hash(mid..<r.upperBound)] }
    return try subproof(m - k, mid..<r.upperBound, false, hash) + [hash(r.lowerBound..<mid)]
  }

  /// The inclusion proof of leaf `index` among `leaves` (all the leaf hashes, in memory).
  public static func inclusionProof(index: UInt64, leaves: [[UInt8]]) -> [[UInt8]] {
    inclusionProof(index: index, size: UInt64(leaves.count)) { rootHash(leaves[Int($0.lowerBound)..<Int($0.upperBound)]) }
  }

  /// The consistency proof from the first `old` of `leaves` to all of them (in memory).
  public static func consistencyProof(old: UInt64, leaves: [[UInt8]]) -> [[UInt8]] {
    consistencyProof(old: old, size: UInt64(leaves.count)) { rootHash(leaves[Int($0.lowerBound)..<Int($0.upperBound)]) }
  }

  /// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that `leafHash` is leaf `index` of the
  /// tree of `size` leaves whose hash is `root`. Any malformed input is simply false.
  public static func verifyInclusion(
    index: UInt64, size: UInt64, leafHash: [UInt8], proof: [[UInt8]], root: [UInt8]
  ) -> Bool {
    guard index < size, leafHash.count == hashSize, root.count == hashSize,
      proof.allSatisfy({ $0.count == hashSize })
    else { return false }
    var fn = index
    var sn = size - 1
    var r = leafHash
    for p in proof {
      if sn == 0 { return false }
      if fn & 1 == 1 || fn == sn {
        r = nodeHash(p, r)
        if fn & 1 == 0 {
          while fn & 1 == 0 && fn != 0 {
            fn >>= 1
            sn >>= 1
          }
        }
      } else {
        r = nodeHash(r, p)
      }
      fn >>= 1
      sn >>= 1
    }
    return sn == 0 && r == root
  }

  /// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `oldSize` leaves with
  /// hash `oldRoot` is a prefix of the tree of `newSize` leaves with hash `newRoot`. Equal
  /// sizes need equal roots and an empty proof; an empty old tree is consistent with anything.
  public static func verifyConsistency(
    oldSize: UInt64, oldRoot: [UInt8], newSize: UInt64, newRoot: [UInt8], proof: [[UInt8]]
  ) -> Bool {
    guard oldSize <= newSize, oldRoot.count == hashSize, newRoot.count == hashSize,
      proof.allSatisfy({ $0.count == hashSize })
    else { return false }
    if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
    if oldSize == 0 { return proof.isEmpty }
    guard !proof.isEmpty else { return false }
    var path = proof[...]
    // When the old tree is a complete subtree, its root is the first node of the path.
    if oldSize & (oldSize - 1) == 0 { path = [oldRoot] + proof }
    var fn = oldSize - 1
    var sn = newSize - 1
    while fn & 1 == 1 {
      fn >>= 1
      sn >>= 1
    }
    var fr = path.first!
    var sr = path.first!
    for c in path.dropFirst() {
      if sn == 0 { return false }
      if fn & 1 == 1 || fn == sn {
        fr = nodeHash(c, fr)
        sr = nodeHash(c, sr)
        if fn & 1 == 0 {
          while fn & 1 == 0 && fn != 0 {
            fn >>= 1
            sn >>= 1
          }
        }
      } else {
        sr = nodeHash(sr, c)
      }
      fn >>= 1
      sn >>= 1
    }
    return sn == 0 && fr == oldRoot && sr == newRoot
  }
}
