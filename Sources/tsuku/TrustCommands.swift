import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Revoke a blob hash (or a key) with the revocation keys; only the revocation section changes.",
      discussion: """
        Publishes revocation list version N+1. From their next sync, clients refuse the hash from \
        every source and purge it from their caches (exit 4 on use); a revoked key's signatures \
        stop counting for the index section. No index key is needed. Revoking a root or \
        revocation key of the current root is done with a warning: it has no effect on what \
        that key can sign (a revoked revocation key can still sign a newer revocation list); \
        only a root rotation (rotate-root) removes it. \
        With several --to, the new list is made once from the newest among them and written \
        to every store. When the newest list already revokes the hash and some store lags \
        (an earlier revocation reached only some stores), the newest index.json is copied to \
        the lagging stores instead, and the command exits 0 saying so.
        """)
    @Argument(help: "The SHA-256 of the blob to revoke.") var hash: String?
    @Option(name: .customLong("key-id"), help: "Revoke this key id instead of a hash.") var keyID: String?
    @Option(help: "Why (one line; shown to every client that refuses it).") var reason: String
    @Option(name: .customLong("key"), help: "A revocation private key file; repeatable.")
    var keys: [String] = []
    @OptionGroup var signer: SignerOptions
    @Option(name: .customLong("to"), parsing: .singleValue, help: "A store URL; repeat --to for every store of the registry.")
    var targets: [String] = []
    @Option(help: "Days until the revocation list expires.") var expiresDays = 30
    @Option(help: "Write the change to FILE for more signatures instead of publishing it.") var stage: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
      if (hash == nil) == (keyID == nil) { throw ValidationError("give a HASH or --key-id, not both") }
      if keys.isEmpty && signer.signers.isEmpty { throw ValidationError("--key is required") }
      if targets.isEmpty { throw ValidationError("--to is required") }
    }

    func run() throws {
      let item: Maintainer.Revocation = try hash.map { .hash(try ObjectID.parse($0)) } ?? .key(keyID!)
      let r = try Maintainer.revoke(
        [item], reason: reason, keys: try signer.keys(keys), in: try targets.map { try StoreURL.open($0) },
        expiresDays: expiresDays, now: Date(), stage: stage, warn: Output.warn)
      let p = r.payload
      // The exposure window of a revoked hash, from the log of the first store that has one.
      var window: (String, ExposureWindow)?
      if stage == nil, !r.copiedOnly, case .hash(let id) = item {
        for url in targets {
          guard let w = try? ExposureWindow.read(try StoreURL.openReader(url), anchor: nil, hash: id, name: nil) else { continue }
          window = (url, w)
          break
        }
      }
      if json {
        struct Out: Encodable {
          var revocation_version: Int, expires: String, staged: String?, copied_only: Bool
          var hash: String?, key_id: String?, reason: String
          var exposure_window: ExposureWindow?, exposure_log: String?
        }
        return Output.json(
          Out(
            revocation_version: p.version, expires: p.expires, staged: stage, copied_only: r.copiedOnly, hash: hash,
            key_id: keyID, reason: reason, exposure_window: window?.1, exposure_log: window?.0))
      }
      if r.copiedOnly {
        return Output.line("already revoked by revocation list version \(p.version); copied it to the stores that lacked it")
      }
      Output.line("\(stage == nil ? "published" : "staged") revocation list version \(p.version); expires \(p.expires)")
      if let (url, w) = window, case .hash(let id) = item {
        Output.line("exposure window of \(id.hex.prefix(16)) (log of '\(url)'): \(w.summary)")
      }
    }
  }

  struct Resign: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Extend the expiry of the current index: a new version with the same content.",
      discussion: """
        For the scheduled job that keeps a registry from expiring. With --revocation-key the revocation list is \
        re-signed too. With several --to, the next version after the newest among them is written to every store \
        (a lagging store gets the roots and blobs it lacks).
        """)
    @Option(name: .customLong("key"), parsing: .upToNextOption, help: "An index private key file; repeatable.")
    var keys: [String] = []
    @OptionGroup var signer: SignerOptions
    @Option(name: .customLong("revocation-key"), parsing: .upToNextOption, help: "A revocation private key file.")
    var revocationKeys: [String] = []
    @Option(name: .customLong("to"), parsing: .singleValue, help: "A store URL; repeat --to for every store of the registry.")
    var targets: [String] = []
    @Option(help: "Days until the new index expires.") var expiresDays = 30
    @Option(help: "Write the change to FILE for more signatures instead of publishing it.") var stage: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
      if keys.isEmpty && signer.signers.isEmpty { throw TsukuError(.usage, "--key is required") }
      if targets.isEmpty { throw TsukuError(.usage, "--to is required") }
      let p = try Maintainer.resign(
        keys: try signer.keys(keys), revocationKeys: try revocationKeys.map(KeyFile.readPrivate),
        in: try targets.map { try StoreURL.open($0) }, expiresDays: expiresDays, now: Date(), stage: stage)
      if json {
        struct Out: Encodable { var index_version: Int, expires: String, staged: String?, targets: [String] }
        return Output.json(Out(index_version: p.version, expires: p.expires, staged: stage, targets: targets))
      }
      Output.line("\(stage == nil ? "published" : "staged") index version \(p.version); expires \(p.expires)")
    }
  }

  struct RotateRoot: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rotate-root",
      abstract: "Make root version N+1 (new keys or thresholds), signed by the old and the new root thresholds.",
      discussion: """
        Roles not given keep their keys. Clients walk the chain one version at a time. After an \
        index key rotation, run 'registry resign --key NEW' so index.json names the new root. \
        With several --to, root N+1 follows the newest root among them and goes to every \
        store, with the root versions a lagging store lacks. When the keys and thresholds asked \
        for are the newest root's and some store lacks that root, it is only copied there.
        """)
    @Option(name: .customLong("to"), parsing: .singleValue, help: "A store URL; repeat --to for every store of the registry.")
    var targets: [String] = []
    @Option(name: .customLong("root-key"), parsing: .upToNextOption, help: "New root public keys.") var rootKeys: [String] = []
    @Option(name: .customLong("index-key"), parsing: .upToNextOption, help: "New index public keys.") var indexKeys: [String] = []
    @Option(name: .customLong("revocation-key"), parsing: .upToNextOption, help: "New revocation public keys.")
    var revocationKeys: [String] = []
    @Option(name: .customLong("log-key"), parsing: .upToNextOption, help: "New transparency-log public keys (adds a log to a root without one).")
    var logKeys: [String] = []
    @Option var rootThreshold: Int?
    @Option var logThreshold: Int?
    @Option var indexThreshold: Int?
    @Option var revocationThreshold: Int?
    @Option(help: "Days until the new root expires.") var expiresDays = 365
    @Option(name: .customLong("sign"), parsing: .upToNextOption, help: "Old and new root private keys.")
    var signKeys: [String] = []
    @OptionGroup var signer: SignerOptions
    @Option(help: "Write the new root to FILE for more signatures instead of publishing it.") var stage: String?
    @Flag(help: "Print the result as JSON.") var json = false

    struct Out: Encodable { var root_version: Int, expires: String?, staged: String?, copied_only: Bool, targets: [String] }

    func run() throws {
      if targets.isEmpty { throw TsukuError(.usage, "--to is required") }
      let stores = try targets.map { try StoreURL.open($0) }
      let all = try RegistryTargets(stores)
      let root = try all.requireRoot()
      var keys = [Role: [PublicKey]]()
      if !rootKeys.isEmpty { keys[.root] = try rootKeys.map(KeyFile.readPublic) }
      if !indexKeys.isEmpty { keys[.index] = try indexKeys.map(KeyFile.readPublic) }
      if !revocationKeys.isEmpty { keys[.revocation] = try revocationKeys.map(KeyFile.readPublic) }
      if !logKeys.isEmpty { keys[.log] = try logKeys.map(KeyFile.readPublic) }
      var t = [Role: Int]()
      t[.log] = logThreshold
      t[.root] = rootThreshold
      t[.index] = indexThreshold
      t[.revocation] = revocationThreshold
      if stage == nil, all.someTargetLags,
        try Maintainer.sameRoles(try Maintainer.nextRootPayload(from: root, keys: keys, thresholds: t, expiresDays: expiresDays, now: Date()), root.payload)
      {
        // The same rotation again after one that reached only some stores: copy it, sign nothing.
        try Maintainer.catchUp(all, message: "root version \(root.version)")
        if json {
          return Output.json(
            Out(root_version: root.version, expires: root.payload.expires, staged: nil, copied_only: true, targets: targets))
        }
        return Output.line("root version \(root.version) already has these keys and thresholds; copied it to the stores that lacked it")
      }
      let env = try Maintainer.nextRoot(
        from: root, keys: keys, thresholds: t, expiresDays: expiresDays, now: Date(),
        signers: try signer.keys(signKeys))
      if let stage {
        try Maintainer.stageRoot(env, targets: all, to: stage)
        if json {
          return Output.json(Out(root_version: root.version + 1, expires: nil, staged: stage, copied_only: false, targets: targets))
        }
        return Output.line("staged root version \(root.version + 1) in \(stage)")
      }
      let next = try Maintainer.writeRoot(env, to: stores)
      if json {
        return Output.json(
          Out(root_version: next.version, expires: next.payload.expires, staged: nil, copied_only: false, targets: targets))
      }
      Output.line("wrote root version \(next.version); expires \(next.payload.expires)")
    }
  }

  struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add signatures to a staged document (threshold signing across machines).",
      discussion: """
        Then publish it with 'tsuku registry publish --staged FILE --to URL'. A key that already signed is skipped; a \
        key that holds no role for a staged section is refused (exit 64). Prints, per section, its valid signatures \
        and the threshold it needs ("index: 1 of 2 required").
        """)
    @Option(help: "The staged file.") var staged: String
    @Option(name: .customLong("key"), parsing: .upToNextOption, help: "A private key file; repeatable.") var keys: [String] = []
    @OptionGroup var signer: SignerOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
      if keys.isEmpty && signer.signers.isEmpty { throw TsukuError(.usage, "--key is required") }
      var s = try Staged.read(staged)
      try s.addSignatures(try signer.keys(keys))
      try s.write(to: staged)
      let needs = try s.signingNeeds()
      if json {
        struct Section: Encodable { var section: String, role: String, root_version: Int, signed: Int, required: Int, complete: Bool }
        struct Out: Encodable { var staged: String, sections: [Section], complete: Bool }
        let sections = needs.map {
          Section(
            section: $0.section.rawValue, role: $0.role.rawValue, root_version: $0.rootVersion, signed: $0.signed,
            required: $0.threshold, complete: $0.signed >= $0.threshold)
        }
        return Output.json(Out(staged: staged, sections: sections, complete: sections.allSatisfy(\.complete)))
      }
      if needs.isEmpty {
        // Staged by an older version: no root recorded to count against.
        let count = s.root?.signatures.count ?? s.index.map { $0.index.signatures.count + ($0.revocation?.signatures.count ?? 0) } ?? 0
        return Output.line("\(staged): \(count) signature(s)")
      }
      for need in needs { Output.line("\(staged): \(need.line)") }
    }
  }
}

extension Tsuku.Registry {
  struct Health: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check a source: reachable, how fast, and whether its index.json verifies.",
      discussion: "Exit 0 healthy, 2 degraded (slower than --slow, or an index that does not verify), 5 unreachable.")
    @Option(help: "The source URL.") var source: String
    @Option(help: "Give up after this many seconds.") var timeout: Double = 5
    @Option(help: "Slower than this many seconds is degraded.") var slow: Double = 2
    @Option(help: "The trusted root to verify with (default: this home's, or the built-in sample root; the report names which).")
    var root: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
      let anchor = try HealthRoot.resolve(file: root, home: Home.fromEnvironment())
      let r = Sync.Health.check(source: source, anchor: anchor, timeout: timeout, slowAfter: slow, now: Date())
      if json {
        Output.json(r)
      } else {
        var line = "\(r.status): \(r.source)"
        if let l = r.latency_ms { line += " (\(l) ms)" }
        if let v = r.index_version { line += ", index version \(v) verified, expires \(r.index_expires ?? "?")" }
        if let e = r.error { line += "; \(e)" }
        if let root = r.root, r.reachable { line += "; checked against \(root)" }
        if let h = r.hint { line += "; \(h)" }
        Output.line(line)
      }
      if r.exitCode != 0 { throw ExitCode(r.exitCode) }
    }
  }
}
