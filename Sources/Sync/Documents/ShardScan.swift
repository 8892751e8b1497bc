import Foundation
import Store

/// What `IndexWalk.keptEntries` keeps of a shard: names, categories, types and blob
/// references; the decoder skips the rest of every entry.
struct KeptShard: Decodable {
  struct Entry: Decodable {
    var name: String
    var category: Category
    var recipe: BlobRef
    var golden: [GoldenRef]
    var type: String
  }
  var format: Int
  var type: String
  var entries: [Entry]

  /// The scan below when it can read the shard, else the full decoder (which also gives the
  /// exact message for a shard that is not valid).
  static func parse(_ bytes: Data, what: String) throws -> KeptShard {
    let s = try scan(bytes) ?? JSON.decode(KeptShard.self, bytes, what: what)
    try checkFormat(s.format, what)
    guard s.type == "index-shard" else { throw TsukuError(.integrity, "\(what) has type '\(s.type)'") }
    return s
  }

  /// A strict one-pass reader of the shard's JSON: every value is checked to be well-formed
  /// JSON, the fields kept are read, the others skipped without building them. Nil for
  /// anything it does not take (malformed JSON, a missing or repeated field, an escape in a
  /// key, a number that is not a plain integer, a hash that is not 64 lowercase hex digits),
  /// so the caller falls back to the full decoder and its message.
  static func scan(_ bytes: Data) -> KeptShard? {
    bytes.withUnsafeBytes { raw in
      var r = JSONScan(raw)
      return r.shard()
    }
  }
}

/// The shard's fields as `KeptShard.scan` reads them.
extension JSONScan {
  mutating func shard() -> KeptShard? {
    var format: Int?, type: String?, entries: [KeptShard.Entry]?
    guard
      object({ r, key in
        switch key {
        case "format": return once(&format, r.int())
        case "type": return once(&type, r.string())
        case "entries": return once(&entries, r.array { r in r.entry() })
        default: return r.skip()
        }
      })
    else { return nil }
    ws()
    guard i == b.count, let format, let type, let entries else { return nil }
    return KeptShard(format: format, type: type, entries: entries)
  }

  mutating func entry() -> KeptShard.Entry? {
    var name: String?, category: Category?, recipe: BlobRef?, golden: [GoldenRef]?, type: String?
    guard
      object({ r, key in
        switch key {
        case "name": return once(&name, r.string())
        case "category": return once(&category, r.string().flatMap(Category.init(rawValue:)))
        case "recipe": return once(&recipe, r.blobRef())
        case "golden": return once(&golden, r.array { r in r.golden() })
        case "type": return once(&type, r.string())
        default: return r.skip()
        }
      }), let name, let category, let recipe, let golden, let type
    else { return nil }
    return KeptShard.Entry(name: name, category: category, recipe: recipe, golden: golden, type: type)
  }

  mutating func blobRef() -> BlobRef? {
    var id: ObjectID?, size: Int?
    guard
      object({ r, key in
        switch key {
        case "sha256": return once(&id, r.objectID())
        case "size": return once(&size, r.int())
        default: return r.skip()
        }
      }), let id, let size
    else { return nil }
    return BlobRef(sha256: id, size: size)
  }

  mutating func golden() -> GoldenRef? {
    var platform: String?, version: String?, id: ObjectID?, size: Int?
    guard
      object({ r, key in
        switch key {
        case "platform": return once(&platform, r.string())
        case "version": return once(&version, r.string())
        case "sha256": return once(&id, r.objectID())
        case "size": return once(&size, r.int())
        default: return r.skip()
        }
      }), let platform, let version, let id, let size
    else { return nil }
    return GoldenRef(platform: platform, version: version, sha256: id, size: size)
  }
}
