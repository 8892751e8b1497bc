import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// The shard scan that validation, retention and mirrors read shards with must read exactly
/// what the full decoder reads, and give way to it on anything it does not take.
@Suite struct ShardScanTests {
  /// The fields the scan keeps, for comparison.
  static func kept(_ s: KeptShard) -> [String] {
    ["\(s.format) \(s.type)"]
      + s.entries.map { e in
        "\(e.name) \(e.category) \(e.type) \(e.recipe.sha256.hex) \(e.recipe.size) "
          + e.golden.map { "\($0.platform)/\($0.version)/\($0.sha256.hex)/\($0.size)" }.joined(separator: ",")
      }
  }

  static func decoded(_ bytes: Data) throws -> KeptShard { try JSONDecoder().decode(KeptShard.self, from: bytes) }

  static func entry(_ name: String, description: String = "a tool", golden: Int = 1) -> IndexEntry {
    IndexEntry(
      name: name, category: name.hasPrefix("c") ? .critical : .community,
      recipe: BlobRef(of: Data("recipe \(name)".utf8)),
      golden: (0..<golden).map {
        GoldenRef(platform: "linux-amd64", version: "1.\($0)", sha256: SHA256.hash("g\(name)\($0)"), size: 100 + $0)
      },
      description: description, homepage: "https://example.org/\(name)", type: "tool",
      dependencies: ["dep-a", "dep-b"], runtime_dependencies: [], source_commit: nil)
  }

  @Test func theScanReadsEveryShardOfTheSampleRegistryAsTheDecoderDoes() throws {
    let store = DirectoryStore(path: checkout + "/registry-index/store")
    let root = try Publisher.currentRoot(of: store)
    let index = try #require(try Publisher.currentIndex(of: store, root: root))
    let contents = try IndexContents.load(index, from: [store])
    let shards = contents.pinned.values.filter { $0.role == .shard }
    #expect(shards.count > 10)
    for s in shards {
      let bytes = try store.get(s.id, maxSize: s.size)
      let scanned = try #require(KeptShard.scan(bytes), "shard \(s.detail ?? "")")
      #expect(Self.kept(scanned) == Self.kept(try Self.decoded(bytes)))
    }
  }

  @Test func unicodeEscapesNestedValuesAndUnknownFieldsAreSkippedAlike() throws {
    let entries = [
      Self.entry("alpha", description: "quotes \" and \\ and \u{1F600} and \u{7} and é", golden: 3),
      Self.entry("beta", description: "", golden: 0),
      Self.entry("critical-one"),
    ]
    var json = String(
      decoding: JSON.encode(IndexShard(format: Format.current, type: "index-shard", prefix: "a", entries: entries)),
      as: UTF8.self)
    // A field this version does not know, with nested values and every JSON literal.
    json = json.replacingOccurrences(
      of: #""name":"beta""#, with: #""future":{"a":[1,-2.5e+3,true,false,null,{"b":"\u00e9\/"}]},"name":"beta""#)
    let bytes = Data(json.utf8)
    let scanned = try #require(KeptShard.scan(bytes))
    #expect(Self.kept(scanned) == Self.kept(try Self.decoded(bytes)))
    #expect(scanned.entries.map(\.name) == ["alpha", "beta", "critical-one"])
    #expect(scanned.entries[0].golden.count == 3)
  }

  @Test func whatTheScanDoesNotTakeGoesToTheDecoder() throws {
    let shard = String(
      decoding: JSON.encode(IndexShard(format: Format.current, type: "index-shard", prefix: "a", entries: [Self.entry("alpha")])),
      as: UTF8.self)
    let hex = Self.entry("alpha").recipe.sha256.hex
    // Valid JSON the scan leaves to the decoder: an escape in a kept string, an uppercase hash.
    for variant in [
      shard.replacingOccurrences(of: #""name":"alpha""#, with: #""name":"alph\u0061""#),
      shard.replacingOccurrences(of: hex, with: hex.uppercased()),
    ] {
      #expect(KeptShard.scan(Data(variant.utf8)) == nil, "\(variant)")
    }
    let escaped = Data(shard.replacingOccurrences(of: #""name":"alpha""#, with: #""name":"alph\u0061""#).utf8)
    #expect(try KeptShard.parse(escaped, what: "shard").entries.map(\.name) == ["alpha"])
    // Not valid (or not a shard this version reads): no scan, and the decoder's refusal.
    let broken = [
      shard + "x",
      String(shard.dropLast()),
      shard.replacingOccurrences(of: #""type":"tool""#, with: #""type":"to\#u{1}ol""#),
      shard.replacingOccurrences(of: #""description":"a tool""#, with: #""description":"a \q tool""#),
      shard.replacingOccurrences(of: #""size":"#, with: #""size":01"#),
      shard.replacingOccurrences(of: #""name":"alpha""#, with: #""name":"alpha","name":"beta""#),
      shard.replacingOccurrences(of: #""category":"community""#, with: #""category":"other""#),
      shard.replacingOccurrences(of: #","recipe":"#, with: #","recipe2":"#),
    ]
    for variant in broken {
      #expect(KeptShard.scan(Data(variant.utf8)) == nil, "\(variant)")
    }
    // The decoder takes a repeated key, and does not look inside a value it skips (the bad
    // escape is in a description): both are read by it after the scan gives way.
    for (n, variant) in broken.enumerated() where n != 3 && n != 5 {
      #expect(throws: TsukuError.self, "variant \(n): \(variant)") { try KeptShard.parse(Data(variant.utf8), what: "shard") }
    }
    var invalidUTF8 = Data(shard.utf8)
    invalidUTF8[invalidUTF8.firstRange(of: Data("a tool".utf8))!.lowerBound] = 0xFF
    #expect(KeptShard.scan(invalidUTF8) == nil)
  }
}
