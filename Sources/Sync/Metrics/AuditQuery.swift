import Foundation
import Store

/// What this home's audit history says about one blob: whether it was received (by a sync,
/// packs included, or fetched on a read) and served (`show`/`plan` from the cache or straight
/// from a source), when, from which source and under which index version.
public struct AuditAnswer: Codable, Sendable, Equatable {
  /// One reception of the blob.
  public struct Receipt: Codable, Sendable, Equatable {
    public var time: String
    public var source: String?
    public var index_version: Int?
    public var source_commit: String?
    /// `sync` (with the index), `read` (fetched on demand when a read found it not cached).
    public var via: String
  }

  /// One time the blob was served to a command.
  public struct Serve: Codable, Sendable, Equatable {
    public var time: String
    public var index_version: Int?
    /// `cache`, or `source` (fetched for this read).
    public var via: String
  }

  /// A refusal about the blob: `revoked` or `verify_failure`.
  public struct Refusal: Codable, Sendable, Equatable {
    public var event: String
    public var time: String
    public var source: String?
    public var detail: String?
  }

  public var sha256: String
  /// The names it was received or served under (a recipe, or `NAME VERSION PLATFORM`).
  public var names: [String] = []
  /// `recipe`, `golden` or `index`, when known.
  public var kind: String?
  public var received = false
  public var served = false
  /// Oldest first; at most `AuditAnswer.maxListed` (`receipt_count` counts them all).
  public var receipts: [Receipt] = []
  public var receipt_count = 0
  public var served_count = 0
  public var first_served: Serve?
  public var last_served: Serve?
  /// Oldest first; at most `AuditAnswer.maxListed`.
  public var refusals: [Refusal] = []

  /// The most receipts and refusals listed per blob.
  public static let maxListed = 1000

  public init(sha256: String) { self.sha256 = sha256 }

  /// Received or served.
  public var seen: Bool { received || served }
}

/// The answer of `tsuku audit --hash` or `--name`: the blobs asked about (for a name, every
/// hash the history knows it by) and, so that a "never" can be judged, since when the
/// history reaches back.
public struct AuditReport: Codable, Sendable, Equatable {
  public var sha256: String?
  public var name: String?
  /// True when some blob was received or served.
  public var seen: Bool
  /// The time of the oldest event the log still holds; nil for an empty log.
  public var history_since: String?
  public var blobs: [AuditAnswer]
}

extension AuditLog {
  /// What the history says about `id` (or, with `name`, about every hash recorded under that
  /// name, as a recipe or as its golden files). Reads the log and its side files as streams.
  public func report(sha256 id: ObjectID? = nil, name: String? = nil, since: Date? = nil) -> AuditReport {
    var ids = id.map { [$0.hex] } ?? []
    if let name { ids = hashes(named: name, since: since) }
    var answers = [String: AuditAnswer]()
    for h in ids { answers[h] = AuditAnswer(sha256: h) }
    let targets = Set(ids)
    let hexes = ids.map { Data($0.utf8) }
    let sideMark = Data("\"blobs_file\"".utf8)
    forEachEvent(since: since, matching: { line in line.range(of: sideMark) != nil || hexes.contains { line.range(of: $0) != nil } }) {
      e, file in
      if e.event == "receive" {
        AuditLog.forEachBlob(of: e, in: file) { hex, kind, blobName in
          guard targets.contains(hex) else { return }
          answers[hex]?.note(e, kind: kind, name: blobName)
        }
      } else if let h = e.sha256, targets.contains(h) {
        answers[h]?.note(e)
      }
    }
    let blobs = ids.compactMap { answers[$0] }
    return AuditReport(
      sha256: id?.hex, name: name, seen: blobs.contains { $0.seen }, history_since: oldestTime(), blobs: blobs)
  }

  /// Every hash recorded under `name` (a recipe, or one of its golden files), in the order
  /// first seen.
  public func hashes(named name: String, since: Date? = nil) -> [String] {
    var out = [String]()
    var seen = Set<String>()
    func matches(_ n: String?) -> Bool { n == name || n?.hasPrefix(name + " ") == true }
    let needle = Data(name.utf8)
    let sideMark = Data("\"blobs_file\"".utf8)
    forEachEvent(since: since, matching: { $0.range(of: needle) != nil || $0.range(of: sideMark) != nil }) { e, file in
      if e.event == "receive" {
        AuditLog.forEachBlob(of: e, in: file) { hex, kind, n in
          if kind != BlobKind.index.rawValue, matches(n), seen.insert(hex).inserted { out.append(hex) }
        }
      } else if let h = e.sha256, e.kind != BlobKind.index.rawValue, matches(e.name), seen.insert(h).inserted {
        out.append(h)
      }
    }
    return out
  }

  /// The blobs of a `receive` event: those listed in the line, or those of its side file
  /// (streamed), as hex, kind and name.
  static func forEachBlob(of e: AuditEvent, in file: String, _ body: (String, String, String?) -> Void) {
    func parse(_ line: Substring) {
      let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
      guard parts.count >= 2, parts[0].utf8.count == 64 else { return }
      body(String(parts[0]), String(parts[1]), parts.count > 2 ? String(parts[2]) : nil)
    }
    for l in e.blobs ?? [] { parse(Substring(l)) }
    guard let f = e.blobs_file, !f.contains("/"), !f.hasPrefix(".") else { return }
    LineReader.forEachLine(sideFolder(of: file) + "/" + f) { parse(Substring(String(decoding: $0, as: UTF8.self))) }
  }

  /// The time of the oldest event still held.
  func oldestTime() -> String? {
    for f in files {
      var t: String?
      LineReader.forEachLine(f) { line in
        if t == nil, let e = try? JSONDecoder().decode(AuditEvent.self, from: line) { t = e.time }
      }
      if let t { return t }
    }
    return nil
  }
}

extension AuditAnswer {
  /// Adds what event `e` says about this blob (`kind`, `name`: from a receipt's list).
  mutating func note(_ e: AuditEvent, kind k: String? = nil, name n: String? = nil) {
    if let n = n ?? e.name, !names.contains(n) { names.append(n) }
    kind = kind ?? k ?? e.kind
    switch e.event {
    case "receive", "fetch":
      received = true
      receipt_count += 1
      if receipts.count < Self.maxListed {
        receipts.append(
          Receipt(
            time: e.time, source: e.source, index_version: e.index_version, source_commit: e.source_commit,
            via: e.event == "receive" ? "sync" : "read"))
      }
      // A fetch for a read of a recipe or golden file served it too.
      if e.event == "fetch", e.kind == BlobKind.recipe.rawValue || e.kind == BlobKind.golden.rawValue {
        serve(Serve(time: e.time, index_version: e.index_version, via: "source"))
      }
    case "cache_hit":
      serve(Serve(time: e.time, index_version: e.index_version, via: "cache"))
    case "revoked", "verify_failure":
      if refusals.count < Self.maxListed {
        refusals.append(Refusal(event: e.event, time: e.time, source: e.source, detail: e.detail))
      }
    default: break
    }
  }

  private mutating func serve(_ s: Serve) {
    served = true
    served_count += 1
    if first_served == nil { first_served = s }
    last_served = s
  }
}
