import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku {
  struct Registry: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Maintainer commands: keys, the root of trust, publishing.",
      subcommands: [
        Keygen.self, InitRoot.self, Publish.self, Revoke.self, Resign.self, RotateRoot.self, Sign.self, Health.self, Status.self,
        Mirror.self, Log.self, WitnessCommand.self,
        DriftCheck.self, SizeReportCommand.self, Validate.self, GC.self, Export.self,
      ])
  }
}

extension Tsuku.Registry {
  struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make an Ed25519 key pair: FILE (private, mode 0600) and FILE.pub; print the key id.")
    @Option(help: "Where to write the private key.") var out: String
    @Option(help: "A note stored in the key file (e.g. 'TEST KEY').") var note: String?
    @OptionGroup var encryption: KeyEncryptionOptions
    @Flag(help: "Print the key id and the files as JSON.") var json = false

    func run() throws {
      let key = try SigningKey.generate()
      let passphrase = try encryption.passphrase()
      try KeyFile.write(key, to: out, note: note, passphrase: passphrase)
      if json {
        struct Out: Encodable { var key_id: String, private_key: String, public_key: String, encrypted: Bool }
        return Output.json(Out(key_id: key.keyID, private_key: out, public_key: out + ".pub", encrypted: passphrase != nil))
      }
      Output.line(key.keyID)
    }
  }

  struct InitRoot: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "init",
      abstract: "Write root version 1 (root/1.root.json) into each store, signed by the root keys.",
      discussion: """
        With several --to, one root version 1 is signed and written to every store. When some \
        stores already hold a root version 1 with the same keys and thresholds, that one is \
        copied to the others instead (a different root version 1 in a store is refused). \
        With --stage FILE, root version 1 is written to FILE for more signatures ('registry \
        sign', on other machines), then 'registry publish --staged FILE --to URL ...' writes it.
        """)
    @Option(name: .customLong("to"), parsing: .singleValue, help: "A store URL; repeat --to for every store of the registry.")
    var targets: [String] = []
    @Option(name: .customLong("root-key"), parsing: .upToNextOption, help: "A root public key file; repeatable.") var rootKeys: [String] = []
    @Option(name: .customLong("index-key"), parsing: .upToNextOption, help: "An index public key file; repeatable.") var indexKeys: [String] = []
    @Option(name: .customLong("revocation-key"), parsing: .upToNextOption, help: "A revocation public key file; repeatable.")
    var revocationKeys: [String] = []
    @Option(
      name: .customLong("log-key"), parsing: .upToNextOption,
      help: "A transparency-log public key file (signs the log's checkpoints); repeatable. Without it the registry has no log.")
    var logKeys: [String] = []
    @Option(help: "Log checkpoint signatures required.") var logThreshold = 1
    @Option(help: "The log's origin line (its name in checkpoints); default tsuku-registry-log/<first log key id>.")
    var logOrigin: String?
    @Option(help: "Root signatures required.") var rootThreshold = 1
    @Option(help: "Index signatures required.") var indexThreshold = 1
    @Option(help: "Revocation signatures required.") var revocationThreshold = 1
    @Option(help: "Days until this root expires.") var expiresDays = 365
    @Option(name: .customLong("sign"), parsing: .upToNextOption, help: "A root private key file to sign with; repeatable.") var signKeys: [String] = []
    @OptionGroup var signer: SignerOptions
    @Option(help: "Write root version 1 to FILE for more signatures instead of writing it to the stores.")
    var stage: String?
    @Option(help: ArgumentHelp("Date a git target's commit (YYYY-MM-DDTHH:MM:SSZ), for replays.", visibility: .hidden))
    var commitTime: String?
    @Flag(help: "Print the result as JSON.") var json = false

    struct Out: Encodable {
      var root_version = 1
      var expires: String, staged: String?, signatures: Int, copied_only: Bool
      var targets: [T]
      struct T: Encodable { var url: String, commit: String? }
    }

    func validate() throws {
      _ = try CommitTime.parse(commitTime)
      if targets.isEmpty && stage == nil { throw ValidationError("--to is required") }
      if rootKeys.isEmpty || indexKeys.isEmpty || revocationKeys.isEmpty {
        throw ValidationError("--root-key, --index-key and --revocation-key are each required at least once")
      }
      if signKeys.isEmpty && signer.signers.isEmpty && stage == nil {
        throw ValidationError("--sign is required: root version 1 must be signed by the root keys")
      }
      if !(1...3650).contains(expiresDays) { throw ValidationError("invalid --expires-days '\(expiresDays)': expected 1 to 3650") }
    }

    func run() throws {
      let now = Date()
      func role(_ files: [String], _ t: Int, _ name: String) throws -> ([PublicKey], RoleKeys) {
        let keys = try files.map(KeyFile.readPublic)
        let ids = Array(Set(keys.map(\.keyID))).sorted()
        if t < 1 || t > ids.count {
          throw TsukuError(.usage, "invalid --\(name)-threshold '\(t)': \(ids.count) distinct \(name) key\(ids.count == 1 ? "" : "s") given")
        }
        return (keys, RoleKeys(keyids: ids, threshold: t))
      }
      let r = try role(rootKeys, rootThreshold, "root")
      let i = try role(indexKeys, indexThreshold, "index")
      let v = try role(revocationKeys, revocationThreshold, "revocation")
      var roles: [Role: RoleKeys] = [.root: r.1, .index: i.1, .revocation: v.1]
      var keys = r.0 + i.0 + v.0
      if !logKeys.isEmpty {
        let l = try role(logKeys, logThreshold, "log")
        roles[.log] = l.1
        keys += l.0
      }
      let payload = RootPayload(
        version: 1, expires: now.addingTimeInterval(Double(expiresDays) * 86400), keys: keys, roles: roles,
        logOrigin: logOrigin ?? LogRole.defaultOrigin(roles[.log]))
      let signers = try signer.keys(signKeys)
      for s in signers where !r.1.keyids.contains(s.keyID) {
        throw TsukuError(.usage, "--sign key '\(s.keyID.prefix(16))' is not one of the --root-key keys")
      }
      let env = try Envelope.sign(type: .root, payload: RootDocuments.encode(payload), keys: signers)
      if let stage {
        // Fewer signatures than the threshold are fine here: 'registry sign' adds the others.
        try Staged(root: env).write(to: stage)
        if json {
          return Output.json(
            Out(expires: payload.expires, staged: stage, signatures: env.signatures.count, copied_only: false, targets: []))
        }
        return Output.line("staged root version 1 in \(stage): \(env.signatures.count) signature(s); add more with 'tsuku registry sign'")
      }
      let bytes = RootDocuments.encode(env)
      _ = try TrustedRoot(anchor: bytes, what: "the new root")
      let all = try RegistryTargets(try targets.map { try StoreURL.open($0) })
      if let existing = all.root {
        // A store already holds root version 1: the same keys and thresholds are copied to
        // the stores that lack it (nothing is signed); other keys are refused.
        let holder = all.targets.first { !$0.roots.isEmpty }!
        let first = try TrustedRoot(anchor: all.roots[0], what: "root/1.root.json in '\(holder.location)'")
        guard Maintainer.sameRoles(first.payload, payload) else {
          throw TsukuError(.usage, "'\(holder.location)' already has root/1.root.json; use rotate-root to change keys")
        }
        guard all.someTargetLags else {
          throw TsukuError(.usage, "'\(holder.location)' already has root/1.root.json; use rotate-root to change keys")
        }
        try Maintainer.catchUp(all, message: "root version \(existing.version)")
        if json {
          return Output.json(
            Out(
              expires: first.payload.expires, staged: nil, signatures: 0, copied_only: true,
              targets: targets.map { .init(url: $0, commit: nil) }))
        }
        return Output.line(
          "'\(holder.location)' already has root version 1 with these keys and thresholds; copied it to the stores that lacked it")
      }
      let commits = try Maintainer.writeFirstRoot(env, to: all, time: try CommitTime.parse(commitTime))
      if json {
        return Output.json(
          Out(
            expires: payload.expires, staged: nil, signatures: env.signatures.count, copied_only: false,
            targets: try targets.map { .init(url: $0, commit: commits[try StoreURL.open($0).location]) }))
      }
      for t in targets {
        let location = try StoreURL.open(t).location
        Output.line("wrote root version 1 to \(t)\(commits[location].map { " (commit \($0.prefix(12)))" } ?? ""); expires \(payload.expires)")
      }
    }
  }

  struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Validate recipes and golden files, sign a new index and write it to each store.",
      discussion: """
        Recipes are <letter>/<name>.toml or flat <name>.toml; golden files are \
        <tool>/v<version>-<platform>.json at any depth. Other files are skipped and counted. \
        Nothing is written unless every file is valid. Blobs the store lacks are written \
        first, index.json last; a git store gets one commit on its branch. \
        Each target's changes are printed: recipes and golden files added (+), changed (~) and \
        removed (-) against the index it holds. A publish that removes a critical recipe, or \
        more than 5% of the recipes or golden files a target holds, is refused (exit 64) unless \
        --allow-removals; one with a file the revocation list revokes is refused (exit 4). \
        With several --to, the index is signed once, after the newest among the stores, and the \
        same bytes go to each store in a fixed order; a store lacking a root version or an older \
        index is brought forward. If a store fails, the later ones are not written, each store's \
        state is printed, and the same command run again makes them agree. With --staged, the \
        staged index must follow the newest index among the stores.
        """)
    @Option(help: "Community recipes folder.") var recipes: String?
    @Option(help: "Critical recipes folder.") var critical: String?
    @Option(help: "Golden files folder.") var golden: String?
    @Option(name: .customLong("key"), parsing: .upToNextOption, help: "An index private key file; repeatable.") var keys: [String] = []
    @OptionGroup var signer: SignerOptions
    @Option(name: .customLong("revocation-key"), parsing: .upToNextOption, help: "A revocation private key: re-sign the revocation list (or make an empty one).")
    var revocationKeys: [String] = []
    @Option(name: .customLong("to"), parsing: .singleValue, help: "A store URL; repeat --to for every store of the registry.")
    var targets: [String] = []
    @Option(help: "Days until this index expires.") var expiresDays = 30
    @Option(help: "Write the signed index to FILE for more signatures instead of publishing it (blobs are written).")
    var stage: String?
    @Option(help: "Publish a staged FILE (see 'registry sign') after checking its thresholds.") var staged: String?
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Print what would be added, changed and removed in each target; write nothing.") var dryRun = false
    @Flag(help: "Publish even if it removes critical recipes or more than 5% of the recipes or golden files.")
    var allowRemovals = false
    @Flag(help: "Drop blobs the new index does not reference from the committed tree (git targets only; history keeps them).")
    var prune = false
    @Option(help: ArgumentHelp("Date a git target's commit (YYYY-MM-DDTHH:MM:SSZ), for replays.", visibility: .hidden))
    var commitTime: String?
    @Option(
      help: "Packs for cold syncs: auto (for s3:// and http(s):// targets), always, never.")
    var packs = "auto"

    func validate() throws {
      if targets.isEmpty { throw ValidationError("--to is required") }
      _ = try CommitTime.parse(commitTime)
      if prune, let t = targets.first(where: { !$0.lowercased().hasPrefix("git+file://") }) {
        throw ValidationError("--prune needs git targets: '\(t)' is not a git+file:// URL")
      }
      if !["auto", "always", "never"].contains(packs) {
        throw ValidationError("invalid --packs '\(packs)': expected auto, always or never")
      }
      if staged != nil {
        if dryRun { throw ValidationError("--dry-run does not apply to --staged") }
        return
      }
      if dryRun && stage != nil { throw ValidationError("give --dry-run or --stage, not both") }
      if keys.isEmpty && signer.signers.isEmpty { throw ValidationError("--key is required") }
      if recipes == nil && critical == nil { throw ValidationError("give --recipes and/or --critical") }
    }

    func run() throws {
      if let staged {
        let s = try Staged.read(staged)
        let result = try s.publish(to: targets.map { try StoreURL.open($0) }, now: Date())
        for t in targets { Output.line("\(t): " + result) }
        return
      }
      let signers = try signer.keys(keys)
      let rsigners = try revocationKeys.map(KeyFile.readPrivate)
      let stores = try targets.map { try StoreURL.open($0) }
      let r = try Publisher.publish(
        PublishInput(recipes: recipes, critical: critical, golden: golden), keys: signers, revocationKeys: rsigners,
        to: stores, expiresDays: expiresDays, now: Date(), stage: stage, commitTime: try CommitTime.parse(commitTime),
        prune: prune,
        packs: packs == "always"
          || (packs == "auto" && targets.contains { ["s3://", "http://", "https://"].contains(where: $0.lowercased().hasPrefix) }),
        dryRun: dryRun, allowRemovals: allowRemovals,
        log: json ? { _ in } : Output.info,
        failed: { states in
          // A store failed: with --json, each store's state on stdout (the error on stderr).
          struct Failed: Encodable { var error = true, targets: [TargetState] }
          if json { Output.json(Failed(targets: states)) }
        })
      // A dry run shows the changes first, then refuses as the publish itself would.
      let refusal = dryRun && !allowRemovals ? r.changes.flatMap(\.removalProblems) : []
      if json {
        struct Out: Encodable {
          var dry_run: Bool
          var index_version: Int, root_version: Int, recipes: Int, critical: Int, golden: Int, skipped: Int
          var skipped_files: [String]
          var changes: [PublishChanges]
          var refused: [String]
          var targets: [T]
          struct T: Encodable { var url: String, written: Int, present: Int, pruned: Int, bytes: Int, commit: String? }
        }
        Output.json(
          Out(
            dry_run: dryRun, index_version: r.indexVersion, root_version: r.rootVersion, recipes: r.scan.entries.count,
            critical: r.scan.criticalCount, golden: r.scan.goldenCount, skipped: r.scan.skipped.count,
            skipped_files: r.scan.skipped,
            changes: r.changes, refused: refusal,
            targets: r.targets.map { .init(url: $0.location, written: $0.report.objectsWritten, present: $0.report.objectsPresent, pruned: $0.report.objectsPruned, bytes: $0.report.bytesWritten, commit: $0.report.commit) }))
      } else {
        for c in r.changes { c.lines.forEach(Output.line) }
        for f in r.scan.skipped { Output.verbose("skipped: \(f)") }
      }
      if !refusal.isEmpty {
        throw TsukuError(.usage, "publish would be refused (pass --allow-removals if this is meant): " + refusal.joined(separator: "; "))
      }
      if json { return }
      if dryRun {
        return Output.line("dry run: index version \(r.indexVersion) not published: \(r.scan.entries.count) recipes (\(r.scan.criticalCount) critical), \(r.scan.goldenCount) golden files; nothing written")
      }
      let listHint = r.scan.skipped.isEmpty || Terminal.verbose ? "" : " (-v lists them)"
      Output.line("\(stage == nil ? "published" : "staged") index version \(r.indexVersion): \(r.scan.entries.count) recipes (\(r.scan.criticalCount) critical), \(r.scan.goldenCount) golden files, \(r.scan.skipped.count) other files skipped\(listHint)")
    }
  }
}

/// The hidden `--commit-time` option: a UTC time in the format's one form.
enum CommitTime {
  static func parse(_ text: String?) throws -> Date? {
    guard let text else { return nil }
    guard let d = Timestamp.parse(text) else {
      throw ValidationError("invalid --commit-time '\(text)': expected YYYY-MM-DDTHH:MM:SSZ")
    }
    return d
  }
}
