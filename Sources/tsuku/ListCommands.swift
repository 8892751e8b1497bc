import ArgumentParser
import Foundation
import Store
import Sync

/// The JSON shape of one recipe in info, list and search output.
struct EntryJSON: Encodable {
  var name: String
  var category: String
  var description: String
  var homepage: String
  var type: String
  var dependencies: [String]
  var runtime_dependencies: [String]
  var recipe: BlobRef
  var golden: [GoldenRef]?
  var index_version: Int?
  var cached: Bool?
  /// info only: the source that served the recipe, the age of the cached index, and the median
  /// latency of the last fetches.
  var source: String?
  var cache_age_seconds: Int?
  var median_fetch_latency_seconds: Double?
  var median_fetch_latency_fetches: Int?
  /// Present when the index's revocation list names the recipe's blob.
  var revoked: RevokedJSON?

  init(_ e: IndexEntry, full: Bool, indexVersion: Int? = nil, cached: Bool? = nil) {
    name = e.name
    category = e.category.rawValue
    description = e.description
    homepage = e.homepage
    type = e.type
    dependencies = e.dependencies
    runtime_dependencies = e.runtime_dependencies
    recipe = e.recipe
    golden = full ? e.golden : nil
    index_version = indexVersion
    self.cached = cached
  }
}

/// Why and when a blob was revoked, as `info`, `list` and `search` print it.
struct RevokedJSON: Encodable {
  var sha256: String
  var reason: String
  var date: String
  var by: String

  init(_ h: RevocationList.Hash) {
    (sha256, reason, date, by) = (h.sha256.hex, h.reason, h.revoked_at, h.by)
  }

  /// The text marker of a revoked entry in `list` and `search`.
  static let marker = "[REVOKED]"

  /// `REVOKED on 2026-12-03T10:00:00Z: reason (by keyid)`.
  var line: String { "REVOKED on \(date): \(reason) (by \(by.prefix(16)))" }
}

/// Entries as `list` and `search` print them: a marker on revoked ones.
func printEntries(_ entries: [IndexEntry], revoked: [ObjectID: RevocationList.Hash], json: Bool) {
  if json {
    return Output.json(
      entries.map { e in
        var j = EntryJSON(e, full: false)
        j.revoked = revoked[e.recipe.sha256].map(RevokedJSON.init)
        return j
      })
  }
  let width = min(entries.map(\.name.count).max() ?? 0, 32)
  Output.line(
    entries.map { e in
      e.name.padding(toLength: max(width, e.name.count), withPad: " ", startingAt: 0) + "  "
        + (revoked[e.recipe.sha256] == nil ? "" : RevokedJSON.marker + " ") + e.description
    }.joined(separator: "\n"))
}

extension Tsuku {
  struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show what the index says about a recipe, where it came from and how fresh it is.",
      discussion: """
        Besides the index entry: whether it is revoked (REVOKED, with the reason and date), the source that served the recipe, the index version, how long ago a source last confirmed the cached index (cache age), and the median latency of the last \(TsukuMetrics.recentFetches) fetches from any source (see 'tsuku metrics').
        """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The recipe name.", completion: RecipeNames.completion) var name: String
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print only the recipe's SHA-256 (for scripts: HASH=$(tsuku info fzf --hash)).") var hash = false

    func run() throws {
      let client = try options.client()
      let e = try client.entry(name)
      if hash { return Output.line(e.recipe.sha256.hex) }
      let idx = try? client.loadIndex()
      let cached = (try? client.home.cache.contains(e.recipe.sha256)) ?? false
      let p = client.provenance(of: e)
      let revocations = client.revocations()
      let revoked = revocations[e.recipe.sha256].map(RevokedJSON.init)
      if json {
        var j = EntryJSON(e, full: true, indexVersion: idx?.version, cached: cached)
        j.revoked = revoked
        j.source = p.source
        j.cache_age_seconds = p.cacheAgeSeconds
        j.median_fetch_latency_seconds = p.medianFetchSeconds
        j.median_fetch_latency_fetches = p.fetchesConsidered > 0 ? p.fetchesConsidered : nil
        return Output.json(j)
      }
      var lines = [
        "name:          \(e.name)",
      ]
      if let r = revoked { lines.append("status:        \(r.line); 'tsuku show' refuses it") }
      lines += [
        "category:      \(e.category.rawValue)",
        "type:          \(e.type)",
        "description:   \(e.description)",
        "homepage:      \(e.homepage)",
      ]
      if !e.dependencies.isEmpty { lines.append("dependencies:  \(e.dependencies.joined(separator: ", "))") }
      if !e.runtime_dependencies.isEmpty {
        lines.append("runtime deps:  \(e.runtime_dependencies.joined(separator: ", "))")
      }
      lines.append("recipe:        sha256 \(e.recipe.sha256.hex), \(e.recipe.size) bytes\(cached ? ", cached" : "")")
      lines.append("source:        \(p.source ?? (revoked == nil ? "none yet (not cached)" : "none (revoked: not served)"))")
      lines.append("index version: \(idx.map { String($0.version) } ?? "none (built-in entry)")")
      if let m = client.home.readCacheMeta() { lines.append("synced:        \(m.synced_at) from \(m.source)") }
      lines.append("cache age:     \(p.cacheAgeSeconds.map { Sync.Duration.describe(TimeInterval($0)) + " since a source confirmed the index" } ?? "no cached index")")
      if let m = p.medianFetchSeconds {
        let ms = String(format: m < 0.001 ? "%.3f" : "%.1f", m * 1000)
        lines.append("fetch latency: \(ms) ms, the median of the last \(p.fetchesConsidered) fetches")
      } else {
        lines.append("fetch latency: no fetches recorded")
      }
      lines.append("golden files:  \(e.golden.count)")
      for g in e.golden {
        let mark = revocations[g.sha256].map { "  REVOKED on \($0.revoked_at): \($0.reason)" } ?? ""
        lines.append("  \(g.platform)  \(g.version)  \(g.sha256.hex.prefix(16))  \(g.size) bytes\(mark)")
      }
      Output.line(lines.joined(separator: "\n"))
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every recipe in the registry.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Only the critical set.") var critical = false

    func run() throws {
      let client = try options.client()
      var all = try client.entries()
      if critical { all = all.filter { $0.category == .critical } }
      printEntries(all, revoked: client.revocations(), json: json)
    }
  }

  struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Find recipes by name or description.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Text to look for (case-insensitive).") var term: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
      let client = try options.client()
      let found = try client.search(term)
      if json { printEntries(found, revoked: client.revocations(), json: true) }
      if found.isEmpty { throw TsukuError(.notFound, "no recipe matches '\(term)'") }
      if json { return }
      printEntries(found, revoked: client.revocations(), json: false)
    }
  }

  struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Re-hash everything cached and re-verify the cached index.",
      discussion:
        "Corrupt blobs are removed from the cache (the next read fetches them again); a pack whose table is damaged is set aside in packs/damaged/ and its blobs count as corrupt. Exit 4 if anything was found."
    )
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
      let r = try options.client().verifyCache()
      if json {
        Output.json(r)
      } else {
        Output.line("checked \(r.blobs_checked) blobs (\(r.bytes_checked) bytes): \(r.corrupt.count) corrupt")
        for c in r.corrupt { Output.line("corrupt: \(c) (removed)") }
        for p in r.damaged_packs { Output.line("damaged pack: \(p) (set aside)") }
        Output.line(r.index_ok ? "index: version \(r.index_version ?? 0) verified" : "index: \(r.index_error ?? "none cached")")
      }
      if !r.corrupt.isEmpty {
        let packs = r.damaged_packs.isEmpty ? "" : " (\(r.damaged_packs.count) damaged pack\(r.damaged_packs.count == 1 ? "" : "s") set aside)"
        throw TsukuError(
          .integrity, "\(r.corrupt.count) cached blob\(r.corrupt.count == 1 ? " was" : "s were") corrupt and removed\(packs)")
      }
      if !r.damaged_packs.isEmpty {
        throw TsukuError(
          .integrity, "\(r.damaged_packs.count) cached pack\(r.damaged_packs.count == 1 ? " was" : "s were") damaged and set aside")
      }
      if !r.index_ok, let e = r.index_error { throw TsukuError(.integrity, "cached index: \(e)") }
    }
  }
}
