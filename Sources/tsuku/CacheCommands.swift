import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku {
  struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Inspect and trim the registry cache (this program's files in $TSUKU_HOME/cache).",
      discussion: """
        The cache is bounded by TSUKU_RECIPE_CACHE_SIZE_LIMIT (500MB): least recently used blobs \
        are evicted, never the critical set or the current index; the trust state lives outside \
        the cache and is kept unless 'cache clear --trust'.
        """,
      subcommands: [Info.self, Cleanup.self, Clear.self])
  }
}

extension Tsuku.Cache {
  struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Entries, bytes, limit, oldest access, hit ratio.")
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
      let c = try ClientOptions.offlineClient()
      let i = c.cacheInfo()
      if json { return Output.json(i) }
      Output.line(
        """
        path:          \(i.path)
        entries:       \(i.entries) blobs (\(i.pinned) pinned: critical set and index)
        size:          \(ByteSize.describe(i.bytes)) of \(ByteSize.describe(i.limit)) (\(i.percent_full)%)
        oldest access: \(i.oldest_access ?? "-")
        hit ratio:     \(i.hit_ratio.map { String(format: "%.1f%% (%d hits, %d misses)", $0 * 100, i.hits, i.misses) } ?? "-")
        index version: \(i.index_version.map(String.init) ?? "-") (confirmed \(i.confirmed_at ?? "never"))
        """)
    }
  }

  struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove blobs not read for a while (never the pinned ones).")
    @Option(help: "Remove what was not read for this long (e.g. 30d).") var maxAge = "30d"
    @Flag(help: "Only say what would be removed.") var dryRun = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
      guard let age = Duration.parse(maxAge) else {
        throw TsukuError(.usage, "invalid --max-age '\(maxAge)': expected a duration such as 30d")
      }
      let removed = try ClientOptions.offlineClient().cleanup(maxAge: age, dryRun: dryRun)
      let bytes = removed.reduce(0) { $0 + $1.1 }
      if json {
        struct Out: Encodable { var dry_run: Bool, removed: [String], bytes: Int }
        return Output.json(Out(dry_run: dryRun, removed: removed.map(\.0.hex), bytes: bytes))
      }
      Output.line("\(dryRun ? "would remove" : "removed") \(removed.count) blobs (\(ByteSize.describe(bytes)))")
    }
  }

  struct Clear: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove the registry cache (the trust state and the Go client's files stay).",
      discussion: """
        Removes this program's files in $TSUKU_HOME/cache (index.json, objects/, packs/, \
        meta.json, access.log, git-history/, ...). The Go tsuku client's files there \
        (downloads/, versions/, taps/, keys/, cargo-registry/, distributed/, updates/, \
        binary-index.db) and anything else this program did not write are kept.
        """)
    @Flag(help: "Also forget the trusted root and versions (then 'tsuku init' again).") var trust = false
    @Flag(help: "Print JSON: the names removed from and kept in the cache folder.") var json = false

    func run() throws {
      let r = try ClientOptions.offlineClient().clear(trust: trust)
      if json {
        struct Out: Encodable { var removed: [String], kept: [String], trust_cleared: Bool }
        return Output.json(Out(removed: r.removed, kept: r.kept, trust_cleared: trust))
      }
      let kept = r.kept.isEmpty ? "" : "; kept \(r.kept.count) entries it did not write (the Go client's)"
      Output.line((trust ? "cleared the cache and the trust state" : "cleared the cache; trust state kept") + kept)
    }
  }
}

extension ClientOptions {
  /// A client for cache maintenance: no sources.
  static func offlineClient() throws -> Client {
    let env = ProcessEnvironment.current
    return CommandRecording.track(
      Client(
        home: Home.fromEnvironment(env), chain: .off, policy: try CachePolicy.fromEnvironment(env), now: Date(),
        warn: Output.warn))
  }
}
