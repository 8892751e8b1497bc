import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku {
  struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Choose the registry: its trusted root and its sources (in $TSUKU_HOME/config.toml).",
      discussion: """
        Trust is never taken on first use: the root comes from --root FILE, or is the one built \
        into tsuku for the default registry. Sources are tried in order (STORE URLS below).

        With --witness and --witness-quorum N, a sync accepts the registry's transparency-log \
        checkpoint only when N of those witnesses cosigned it (exit 4 otherwise). Without them, \
        the witnesses already configured are kept; --witness-quorum 0 alone removes them.

        config.toml is shared with the Go tsuku client: init sets only its own [recipe_store] \
        table and keeps every other key, table and comment as it was. A config.toml that does \
        not parse is refused and left unchanged.
        """)
    @Option(help: "The registry's root of trust (a root.json file).") var root: String?
    @Option(
      name: .customLong("source"), parsing: .upToNextOption,
      help: "A source URL, or a list like 'a,b|c'; repeated sources are tried in order.")
    var sources: [String] = []
    @Flag(help: "Replace a different trusted root (this forgets the versions seen and clears the cache).")
    var force = false
    @Option(
      name: .customLong("witness"), parsing: .singleValue,
      help: ArgumentHelp("A witness's verifier key (name+hash+key, signature type 0x04); repeatable.", valueName: "vkey"))
    var witnesses: [String] = []
    @Option(help: "How many of the --witness keys must have cosigned the log checkpoint a sync accepts.")
    var witnessQuorum: Int?
    @Flag(help: "Print what was set as JSON.") var json = false

    func validate() throws {
      var seen = Set<CosignatureVerifier>()
      for w in witnesses {
        let v: CosignatureVerifier
        do { v = try CosignatureVerifier(vkey: w) } catch let e as TsukuError { throw ValidationError(e.message) }
        if !seen.insert(v).inserted { throw ValidationError("--witness '\(v.name)' is given twice") }
      }
      if !witnesses.isEmpty && witnessQuorum == nil { throw ValidationError("--witness needs --witness-quorum N") }
      if let n = witnessQuorum, n < 0 || n > witnesses.count || (n == 0 && !witnesses.isEmpty) {
        throw ValidationError("--witness-quorum \(n) must be between 1 and the \(witnesses.count) --witness keys given (or 0 alone, for none)")
      }
    }

    func run() throws {
      let home = Home.fromEnvironment()
      let anchor = try root.map(TrustedRoot.read) ?? DefaultRegistry.root()
      let chain = try SourceChain.parse(sources.isEmpty ? DefaultRegistry.source() : sources.joined(separator: ","))
      for s in chain.urls { _ = try StoreURL.openReader(s) }
      var written = Config()
      var replaced = false
      try home.withLock {
        // A config.toml that does not parse is refused before anything changes.
        let oldConfig = try home.readConfig()
        if let (old, state) = try home.loadTrust() {
          if old.bytes == anchor.bytes || (old.version > anchor.version && old.payload.roles == anchor.payload.roles) {
            // The same registry (or a root this home already rotated past): keep what was seen.
            try home.saveTrust(root: old, state: state)
          } else if !force {
            throw TsukuError(
              .usage,
              "'\(home.path)' already trusts another root (version \(old.version)); use --force to replace it (this clears the cache)")
          } else {
            replaced = true
            try? home.removeOwnCache()
            // The transparency log tiles cached for the other registry go with its cache.
            try? FileManager.default.removeItem(atPath: home.path + "/log")
            try home.saveTrust(root: anchor, state: TrustState())
          }
        } else {
          try home.saveTrust(root: anchor, state: TrustState())
        }
        var config = Config(sources: [chain.description])
        if let quorum = witnessQuorum {
          (config.witnesses, config.witnessQuorum) = (witnesses, quorum)
        } else if let old = oldConfig {
          (config.witnesses, config.witnessQuorum) = (old.witnesses, old.witnessQuorum)
        }
        if let warning = try home.writeConfig(config) { Output.warn(warning) }
        written = config
        if json { return }
        if config.witnessQuorum > 0 {
          Output.info("requiring cosignatures from \(config.witnessQuorum) of \(config.witnesses.count) witnesses")
        }
      }
      if json {
        struct Out: Encodable {
          var home: String, config: String, root_version: Int, root_expires: String, root_keys: Int
          var sources: [String], witnesses: [String], witness_quorum: Int, replaced_root: Bool
        }
        return Output.json(
          Out(
            home: home.path, config: home.configPath, root_version: anchor.version, root_expires: anchor.payload.expires,
            root_keys: anchor.payload.keys.count, sources: chain.urls, witnesses: written.witnesses,
            witness_quorum: written.witnessQuorum, replaced_root: replaced))
      }
      Output.info("trusting root version \(anchor.version) (\(anchor.payload.keys.count) keys); wrote \(home.configPath)")
    }
  }

  struct UpdateRegistry: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "update-registry",
      abstract: "Fetch the newest signed index and every recipe and golden file the cache lacks.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Say what would change; write nothing.") var dryRun = false
    @Flag(help: "Fetch recipes only; golden files are fetched when first used.") var noGolden = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
      let client = try options.client()
      let r = try client.updateRegistry(includeGolden: !noGolden, dryRun: dryRun)
      // The names this sync changed, as 'tsuku diff' lists them.
      let diff =
        dryRun || r.up_to_date || r.previous_version == r.index_version
        ? nil
        : client.lastSyncDiff().flatMap { $0.from_version == r.previous_version && $0.to_version == r.index_version ? $0 : nil }
      if json { return Output.json(SyncOutput(report: r, diff: diff)) }
      let verb = dryRun ? "would fetch" : "fetched"
      if dryRun {
        for (label, names) in [("added", r.added), ("changed", r.changed), ("removed", r.removed)] where !names.isEmpty {
          Output.line("\(label) (\(names.count)): \(names.joined(separator: " "))")
        }
      }
      if r.up_to_date {
        Output.line("registry up to date: index version \(r.index_version), \(r.recipes) recipes (\(r.source))")
      } else {
        Output.line(
          "index version \(r.previous_version) -> \(r.index_version): \(r.recipes) recipes, \(r.golden) golden files; \(verb) \(r.fetched_blobs) blobs (\(r.fetched_bytes) bytes) from \(r.source)")
      }
      // On a terminal at most 10 names of each kind; in a pipe, all of them.
      if let diff { for l in diff.lines(limit: isatty(1) == 1 ? 10 : nil, more: " (tsuku diff)") { Output.line(l) } }
    }

    /// The JSON of a sync: the report, and the recipes and golden files it changed.
    struct SyncOutput: Encodable {
      var report: Client.SyncReport
      var diff: IndexDiff?
      enum Key: String, CodingKey { case diff }
      func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        if let diff { try c.encode(diff, forKey: .diff) }
      }
    }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a recipe's exact, verified bytes.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The recipe name.", completion: RecipeNames.completion) var name: String
    func run() throws { Output.data(try options.client().recipe(name)) }
  }

  struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print a golden file's exact, verified bytes.",
      discussion: """
        PLATFORM is os[-linux_family]-arch, as in the plan's own platform object: linux-amd64, \
        linux-debian-amd64, darwin-arm64. Without --platform, this machine's platform is used. \
        When the recipe has no golden file for a family platform (linux-debian-amd64), the \
        generic one of the same OS and architecture (linux-amd64) is used; stderr says which \
        platform was chosen whenever it is not exactly the one asked for.
        """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The recipe name.", completion: RecipeNames.completion) var name: String
    @Option(help: "The platform, e.g. linux-debian-amd64 (default: this machine's).") var platform: String?
    @Option(name: .customLong("tool-version"), help: "The tool version (default: the newest).") var version: String?

    func validate() throws {
      guard let platform else { return }
      let ok = platform.split(separator: "-", omittingEmptySubsequences: false).count.isBetween(2, 3)
        && platform.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "_" }
      if !ok {
        throw ValidationError("invalid platform '\(platform)': expected os[-linux_family]-arch, e.g. linux-debian-amd64")
      }
    }

    func run() throws {
      let asked = platform ?? HostPlatform.current()
      let (data, chosen) = try options.client().plan(name, platforms: HostPlatform.candidates(asked), version: version)
      if platform == nil || chosen != asked {
        let why =
          chosen != asked
          ? "no golden file of '\(name)' for \(asked)\(platform == nil ? " (this machine)" : ""); using \(chosen)"
          : "platform \(chosen) (this machine; --platform to choose another)"
        Output.info(why)
      }
      Output.data(data)
    }
  }
}

extension Int {
  func isBetween(_ a: Int, _ b: Int) -> Bool { self >= a && self <= b }
}
