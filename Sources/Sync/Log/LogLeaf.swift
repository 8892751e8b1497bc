import Foundation
import Store

/// One entry of the transparency log: one `index.json` a maintainer command wrote. A small,
/// deterministic text record (format.md, "Transparency log"):
///
/// ```
/// tsuku-log-entry v1
/// index 42
/// revocation 3
/// published 2026-12-03T17:00:00Z
/// sha256 <hex of the index.json bytes>
/// changes <hex of the change list>
/// ```
///
/// `revocation` is 0 for an index without a revocation list. The change list
/// (`log/changes/<hex>`) names the recipe and golden blobs this index pins that the previous
/// entry's did not, and those it no longer pins; the entry pins it by hash, so the exposure
/// window of a hash is read from the log alone.
public struct LogLeaf: Sendable, Hashable {
  public static let header = "tsuku-log-entry v1"
  public static let maxSize = 512

  public var indexVersion: Int
  public var revocationVersion: Int
  public var published: String
  /// SHA-256 of the exact `index.json` bytes.
  public var indexHash: ObjectID
  /// SHA-256 of the change list bytes.
  public var changes: ObjectID

  public init(indexVersion: Int, revocationVersion: Int, published: String, indexHash: ObjectID, changes: ObjectID) {
    self.indexVersion = indexVersion
    self.revocationVersion = revocationVersion
    self.published = published
    self.indexHash = indexHash
    self.changes = changes
  }

  public var bytes: [UInt8] {
    Array(
      """
      \(Self.header)
      index \(indexVersion)
      revocation \(revocationVersion)
      published \(published)
      sha256 \(indexHash.hex)
      changes \(changes.hex)

      """.utf8)
  }

  /// Parses an entry; `.integrity` for anything that is not exactly one.
  public static func parse(_ bytes: [UInt8], what: String) throws -> LogLeaf {
    func bad() -> TsukuError { TsukuError(.integrity, "\(what) is not a tsuku log entry") }
    guard bytes.count <= maxSize, let text = String(bytes: bytes, encoding: .utf8) else { throw bad() }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard lines.count == 7, lines[0] == header, lines[6].isEmpty else { throw bad() }
    func field(_ i: Int, _ key: String) throws -> String {
      guard lines[i].hasPrefix(key + " ") else { throw bad() }
      return String(lines[i].dropFirst(key.count + 1))
    }
    guard let iv = Int(try field(1, "index")), iv >= 1, let rv = Int(try field(2, "revocation")), rv >= 0,
      let ih = ObjectID(hex: try field(4, "sha256")), let ch = ObjectID(hex: try field(5, "changes"))
    else { throw bad() }
    let published = try field(3, "published")
    guard Timestamp.parse(published) != nil else { throw bad() }
    let leaf = LogLeaf(indexVersion: iv, revocationVersion: rv, published: published, indexHash: ih, changes: ch)
    guard leaf.bytes == bytes else { throw bad() }
    return leaf
  }
}

/// What one log entry's index pins that the previous entry's did not (`+`) and what it no
/// longer pins (`-`): recipe and golden blobs, one line each, sorted:
/// `+ recipe fzf <sha256>` or `- golden go@1.25.7/linux-amd64 <sha256>`.
public struct ChangeList: Sendable, Hashable {
  public struct Line: Sendable, Hashable, Comparable {
    public var added: Bool
    /// `recipe` or `golden`.
    public var kind: String
    /// The recipe name, or `name@version/platform` for a golden file.
    public var name: String
    public var sha256: ObjectID

    public static func < (a: Line, b: Line) -> Bool {
      (a.kind, a.name, a.sha256.hex, a.added ? 1 : 0) < (b.kind, b.name, b.sha256.hex, b.added ? 1 : 0)
    }
  }

  public static let maxSize = 64 << 20
  public var lines: [Line]

  public init(lines: [Line]) { self.lines = lines.sorted() }

  /// The recipe and golden blobs of `pinned`, as (kind, name, hash).
  public static func pins(_ pinned: [ObjectID: PinnedBlob]) -> Set<Line> {
    Set(
      pinned.values.compactMap { p in
        switch p.role {
        case .recipe: Line(added: true, kind: "recipe", name: p.recipe ?? "", sha256: p.id)
        case .golden:
          Line(added: true, kind: "golden", name: "\(p.recipe ?? "")@\(p.detail ?? "")/\(p.platform ?? "")", sha256: p.id)
        default: nil
        }
      })
  }

  /// The change from the pins `old` to `new`.
  public static func diff(old: Set<Line>, new: Set<Line>) -> ChangeList {
    ChangeList(
      lines: Array(new.subtracting(old)) + old.subtracting(new).map { var l = $0; l.added = false; return l })
  }

  public var bytes: Data {
    Data(lines.map { "\($0.added ? "+" : "-") \($0.kind) \($0.name) \($0.sha256.hex)\n" }.joined().utf8)
  }

  public static func parse(_ data: Data, what: String) throws -> ChangeList {
    guard let text = String(data: data, encoding: .utf8) else { throw TsukuError(.integrity, "\(what) is not UTF-8") }
    var lines = [Line]()
    for raw in text.split(separator: "\n") {
      let f = raw.split(separator: " ", omittingEmptySubsequences: false)
      guard f.count == 4, f[0] == "+" || f[0] == "-", f[1] == "recipe" || f[1] == "golden", !f[2].isEmpty,
        let id = ObjectID(hex: f[3])
      else { throw TsukuError(.integrity, "\(what) has a malformed line '\(raw.prefix(80))'") }
      lines.append(Line(added: f[0] == "+", kind: String(f[1]), name: String(f[2]), sha256: id))
    }
    return ChangeList(lines: lines)
  }
}
