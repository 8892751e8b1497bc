import Foundation
import Store
import Testing

@testable import Sync

/// Published vectors for the transparency log's Merkle tree, proofs, tiles and checkpoints.
@Suite struct LogKnownAnswerTests {
  static func hex(_ s: String) -> [UInt8] {
    var out = [UInt8]()
    var it = s.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
  }

  static func b64(_ s: String) -> [UInt8] { [UInt8](Data(base64Encoded: s)!) }

  // Source: transparency-dev/merkle, testonly/constants.go (LeafInputs, RootHashes): the
  // RFC 6962 reference vectors of Certificate Transparency's merkle_tree_test, commit
  // 417fb0c314750d94e53942e9f92e79b6d35915db.
  static let leafInputs = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    .map(hex)
  static let roots = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  ].map(hex)
  static var leaves: [[UInt8]] { leafInputs.map(Merkle.leafHash) }

  // Source: transparency-dev/merkle, rfc6962/rfc6962_test.go (TestRFC6962Hasher).
  @Test func rfc6962HashingVectors() {
    #expect(Merkle.emptyRoot == Self.hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    #expect(Merkle.leafHash([]) == Self.hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"))
    #expect(
      Merkle.leafHash(Array("L123456".utf8)) == Self.hex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"))
    #expect(
      Merkle.nodeHash(Array("N123".utf8), Array("N456".utf8))
        == Self.hex("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"))
  }

  // Source: transparency-dev/merkle testonly/constants.go RootHashes, for every size 0...8.
  @Test func treeHashesOfTheReferenceLeaves() {
    for n in 0...8 { #expect(Merkle.rootHash(Self.leaves[0..<n]) == Self.roots[n], "size \(n)") }
  }

  // Source: transparency-dev/merkle testdata/inclusion/{0,1,2,3}/happy-path.json.
  static let inclusion: [(index: UInt64, size: UInt64, root: String, leaf: String, proof: [String])] = [
    (0, 1, "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=", "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=", []),
    (
      0, 8, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
      [
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=", "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
      ]
    ),
    (
      5, 8, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
      [
        "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=", "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
      ]
    ),
    (
      2, 3, "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=", "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
      ["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]
    ),
  ]

  @Test func inclusionProofVectors() {
    for v in Self.inclusion {
      let proof = v.proof.map(Self.b64)
      #expect(Merkle.verifyInclusion(index: v.index, size: v.size, leafHash: Self.b64(v.leaf), proof: proof, root: Self.b64(v.root)))
      #expect(Merkle.inclusionProof(index: v.index, leaves: Array(Self.leaves[0..<Int(v.size)])) == proof)
      // The failing variants of the same files: wrong leaf, index ± 1, size doubled, a bit flipped,
      // a component removed or added.
      #expect(!Merkle.verifyInclusion(index: v.index, size: v.size, leafHash: Self.b64("V3JvbmdMZWFm"), proof: proof, root: Self.b64(v.root)))
      #expect(!Merkle.verifyInclusion(index: v.index + 1, size: v.size, leafHash: Self.b64(v.leaf), proof: proof, root: Self.b64(v.root)))
      #expect(!Merkle.verifyInclusion(index: v.index, size: v.size * 2, leafHash: Self.b64(v.leaf), proof: proof, root: Self.b64(v.root)))
      for i in proof.indices {
        var bad = proof
        bad[i][0] ^= 8
        #expect(!Merkle.verifyInclusion(index: v.index, size: v.size, leafHash: Self.b64(v.leaf), proof: bad, root: Self.b64(v.root)))
      }
      if !proof.isEmpty {
        #expect(!Merkle.verifyInclusion(index: v.index, size: v.size, leafHash: Self.b64(v.leaf), proof: proof.dropLast(), root: Self.b64(v.root)))
      }
      #expect(!Merkle.verifyInclusion(index: v.index, size: v.size, leafHash: Self.b64(v.leaf), proof: proof + [Self.b64(v.root)], root: Self.b64(v.root)))
    }
  }

  // Source: transparency-dev/merkle testdata/consistency/{1,2,3,4}/happy-path.json.
  static let consistency: [(old: UInt64, new: UInt64, root1: String, root2: String, proof: [String])] = [
    (
      1, 8, "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=", "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
      [
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=", "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
      ]
    ),
    (
      6, 8, "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=", "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
      [
        "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=", "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
      ]
    ),
    (
      2, 5, "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=", "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
      ["Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=", "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="]
    ),
    (
      6, 7, "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=", "3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=",
      [
        "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=", "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
      ]
    ),
  ]

  @Test func consistencyProofVectors() {
    for v in Self.consistency {
      let (r1, r2, proof) = (Self.b64(v.root1), Self.b64(v.root2), v.proof.map(Self.b64))
      #expect(Merkle.verifyConsistency(oldSize: v.old, oldRoot: r1, newSize: v.new, newRoot: r2, proof: proof))
      #expect(Merkle.consistencyProof(old: v.old, leaves: Array(Self.leaves[0..<Int(v.new)])) == proof)
      // The failing variants: swapped roots, sizes changed, empty or truncated proof, a bit flipped.
      #expect(!Merkle.verifyConsistency(oldSize: v.old, oldRoot: r2, newSize: v.new, newRoot: r1, proof: proof))
      #expect(!Merkle.verifyConsistency(oldSize: v.old + 1, oldRoot: r1, newSize: v.new, newRoot: r2, proof: proof))
      #expect(!Merkle.verifyConsistency(oldSize: v.old, oldRoot: r1, newSize: v.new * 2, newRoot: r2, proof: proof))
      #expect(!Merkle.verifyConsistency(oldSize: v.old, oldRoot: r1, newSize: v.new, newRoot: r2, proof: []))
      #expect(!Merkle.verifyConsistency(oldSize: v.old, oldRoot: r1, newSize: v.new, newRoot: r2, proof: proof.dropLast()))
      for i in proof.indices {
        var bad = proof
        bad[i][4] ^= 1
        #expect(!Merkle.verifyConsistency(oldSize: v.old, oldRoot: r1, newSize: v.new, newRoot: r2, proof: bad))
      }
    }
    // testdata/consistency/additional: equal sizes need equal roots and no proof.
    let r = Self.roots[1]
    #expect(Merkle.verifyConsistency(oldSize: 1, oldRoot: r, newSize: 1, newRoot: r, proof: []))
    #expect(!Merkle.verifyConsistency(oldSize: 1, oldRoot: r, newSize: 1, newRoot: Self.roots[2], proof: []))
    #expect(!Merkle.verifyConsistency(oldSize: 1, oldRoot: r, newSize: 1, newRoot: r, proof: [r]))
    #expect(!Merkle.verifyConsistency(oldSize: 2, oldRoot: Self.roots[2], newSize: 1, newRoot: r, proof: []))
  }

  // Source: golang.org/x/mod sumdb/tlog/tile_test.go (tilePaths), commit
  // fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db, at the C2SP height of 8; and the C2SP
  // tlog-tiles example `x001/x234/067`.
  @Test func tilePathVectors() {
    let cases: [(String, Tile?)] = [
      ("tile/0/001", Tile(level: 0, index: 1, width: 256)),
      ("tile/0/001.p/5", Tile(level: 0, index: 1, width: 5)),
      ("tile/5/x123/x456/078", Tile(level: 5, index: 123_456_078, width: 256)),
      ("tile/5/x123/x456/078.p/2", Tile(level: 5, index: 123_456_078, width: 2)),
      ("tile/0/x001/x234/067", Tile(level: 0, index: 1_234_067, width: 256)),
      ("tile/entries/x003/x057/500", Tile(level: nil, index: 3_057_500, width: 256)),
      ("tile/entries/000.p/17", Tile(level: nil, index: 0, width: 17)),
      ("tile/5/123/456/078", nil),
      ("tile/-1/001", nil),
      ("tile/0/1", nil),
      ("tile/0/001.p/256", nil),
      ("tile/0/001.p/0", nil),
      ("tile/0/001.p/05", nil),
      ("tile/0/x000/001", nil),
      ("tile/0/../001", nil),
      ("tile/9/001", nil),
    ]
    for (path, tile) in cases {
      #expect(Tile(path: path) == tile, "\(path)")
      if let tile { #expect(tile.path == path) }
    }
  }

  // Source: golang.org/x/mod sumdb/tlog/tile_test.go TestNewTilesForSize, at height 10 there;
  // here the same boundaries at height 8 (old, new, new tiles at level 0).
  @Test func newTilesAtTheEdges() {
    #expect(Tile.newTiles(level: 0, oldSize: 1, size: 1).isEmpty)
    #expect(Tile.newTiles(level: 0, oldSize: 100, size: 101) == [Tile(level: 0, index: 0, width: 101)])
    #expect(Tile.newTiles(level: 0, oldSize: 255, size: 257).map(\.path) == ["tile/0/000", "tile/0/001.p/1"])
    #expect(Tile.newTiles(level: 1, oldSize: 255, size: 257).map(\.path) == ["tile/1/000.p/1"])
    #expect(Tile.newTiles(level: 0, oldSize: 256, size: 300).map(\.path) == ["tile/0/001.p/44"])
  }

  // C2SP tlog-checkpoint: the example shape (origin, size, base64 root, extension lines).
  @Test func checkpointTextRoundTrips() throws {
    let text = "example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\nextra line\n"
    let c = try Checkpoint.parse(text)
    #expect(c.origin == "example.com/log" && c.size == 8 && c.rootHash == Self.roots[8] && c.extensions == ["extra line"])
    #expect(c.text == text)
    for bad in [
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", "o\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      "o\n8\nXcna\n", "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "o\n-8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
    ] {
      #expect(throws: TsukuError.self) { try Checkpoint.parse(bad) }
    }
  }

  /// A log of 1,000 entries appended in uneven batches through `TileAppend`, read back
  /// through `TileLog`: every tree hash matches the in-memory tree, and the proofs verify.
  @Test func tilesReadBackAsTheTree() throws {
    let tiles = MemoryTiles()
    var all = [[UInt8]]()
    var size: UInt64 = 0
    var roots = [Merkle.emptyRoot]
    for batch in [1, 2, 253, 1, 300, 187, 256, 0] where batch > 0 {
      let entries = (0..<batch).map { Array("leaf \(all.count + $0)".utf8) }
      let r = try TileAppend.append(oldSize: size, entries: entries, source: tiles)
      for (t, b) in r.tiles {
        #expect(tiles.tiles[t] == nil, "\(t.path) rewritten")
        tiles.tiles[t] = b
      }
      all += entries
      size = r.size
      #expect(r.rootHash == Merkle.rootHash(all.map(Merkle.leafHash)[...]))
      roots.append(r.rootHash)
    }
    #expect(size == 1000)
    let hashes = all.map(Merkle.leafHash)
    for useEntries in [false, true] {
      let log = TileLog(source: tiles, size: size, leavesFromEntries: useEntries)
      for n in [UInt64(1), 3, 256, 257, 511, 512, 513, 999, 1000] {
        #expect(try log.treeHash(size: n) == Merkle.rootHash(hashes[0..<Int(n)]))
        let cp = try log.consistencyProof(old: n, new: size)
        #expect(Merkle.verifyConsistency(oldSize: n, oldRoot: Merkle.rootHash(hashes[0..<Int(n)]), newSize: size, newRoot: roots.last!, proof: cp))
        let ip = try log.inclusionProof(index: n - 1, size: size)
        #expect(Merkle.verifyInclusion(index: n - 1, size: size, leafHash: hashes[Int(n - 1)], proof: ip, root: roots.last!))
        #expect(try log.entry(n - 1) == all[Int(n - 1)])
      }
    }
  }
}
