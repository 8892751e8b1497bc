import ArgumentParser
import Foundation
import Store
import Sync

extension Tsuku.Registry {
  struct WitnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "witness",
      abstract: "Witness the registry's transparency log: cosign its checkpoint once it is proved consistent.",
      subcommands: [Cosign.self, WitnessKeygen.self],
      defaultSubcommand: Cosign.self)
  }

  struct Cosign: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check the log's checkpoint and add this witness's cosignature (C2SP tlog-cosignature).",
      discussion: """
        Reads log/checkpoint from the store, checks that it is signed by the log keys of the \
        trusted root (--root FILE, else this home's, else the built-in one, followed through the \
        store's root rotations), that the log's tiles give its root hash, and that it extends \
        the last checkpoint this witness cosigned for that log (same root at the same size, a \
        consistency proof otherwise). Only then is the cosignature added, the state recorded \
        (--state, default $TSUKU_HOME/witness) and the note written back to the store's \
        log/checkpoint, on the condition that the store still holds the very checkpoint read (a \
        compare-and-swap: If-Match on a bucket; a publish or another witness that wrote it first \
        makes this run read it again and retry, twice, then fail with exit 1 saying to run it \
        again; --print or --out FILE instead). A smaller or forked checkpoint is refused with \
        exit 4, naming both checkpoints; nothing is signed.
        """)
    @Option(help: "The store URL of the log (directory, git, s3, https).") var log: String
    @Option(help: "The witness's private key (a key file, env:NAME or -).") var key: String
    @Option(help: "The witness name (default: the name in KEY.vkey, written by 'registry witness keygen').")
    var name: String?
    @Option(help: "The folder of this witness's state (default: $TSUKU_HOME/witness).") var state: String?
    @Option(help: "The trusted root to verify with (default: this home's, or the built-in one).") var root: String?
    @Flag(help: "Print the cosigned checkpoint instead of writing it to the store.") var print = false
    @Option(help: "Write the cosigned checkpoint to FILE instead of the store.") var out: String?
    @Flag(help: "Print what was cosigned as JSON (not with --print).") var json = false

    struct Out: Encodable {
      var checkpoint: String, previous: String?, witness: String, written_to: String
    }

    func validate() throws {
      if print && out != nil { throw ValidationError("give --print or --out, not both") }
    }

    func run() throws {
      let home = Home.fromEnvironment()
      let signer = try CosignatureSigner(name: try witnessName(), key: try KeyFile.readPrivate(key))
      let witness = Witness(signer: signer, stateDir: state ?? home.path + "/witness")
      let anchor = try HealthRoot.resolve(file: root, home: home).root
      let writeBack = !print && out == nil
      // A lost race with another writer of log/checkpoint (a publish, another witness) is
      // retried from the start: the cosignature must be on the checkpoint the store holds.
      for attempt in 1...3 {
        let store = try writeBack ? StoreURL.open(log) : StoreURL.openReader(log)
        let trusted = try Self.newestRoot(anchor, store)
        // The checkpoint is written back only if the store still holds the bytes read here (a
        // compare-and-swap), so a newer checkpoint is never overwritten by an older one.
        guard let bytes = try store.readDocument(.checkpoint, maxSize: SignedNote.maxBytes) else {
          throw TsukuError(.notFound, "'\(log)' has no log/checkpoint")
        }
        let r = try witness.cosign(
          [UInt8](bytes), root: trusted.payload, tiles: StoreTiles(store), url: log,
          time: UInt64(Date().timeIntervalSince1970))
        let cosigned = Data(r.note.serialized())
        let was = r.previous.map { " (after \($0))" } ?? " (the first this witness saw)"
        if print { return Output.data(cosigned) }
        if let out {
          try writeFileAtomically(cosigned, to: out)
          if json {
            return Output.json(
              Out(checkpoint: "\(r.checkpoint)", previous: r.previous.map { "\($0)" }, witness: signer.verifier.name, written_to: out))
          }
          return Output.info("cosigned \(r.checkpoint)\(was); wrote \(out)")
        }
        guard let writer = store as? any ObjectWriter else {
          throw TsukuError(.usage, "'\(log)' cannot be written: use --print or --out FILE")
        }
        do {
          try Witness.writeBack(
            cosigned, over: bytes, to: writer, message: "witness \(signer.verifier.name) cosigns \(r.checkpoint)")
        } catch let e as TsukuError where e.code == .conflict {
          if attempt == 3 { throw e }
          continue
        }
        let now = try store.readDocument(.checkpoint, maxSize: SignedNote.maxBytes)
        if let now, let held = try? SignedNote.parse([UInt8](now)), held.text == r.note.text,
          !held.verifiedCosigners([signer.verifier]).isEmpty
        {
          if json {
            return Output.json(
              Out(
                checkpoint: "\(r.checkpoint)", previous: r.previous.map { "\($0)" }, witness: signer.verifier.name,
                written_to: log + " (log/checkpoint)"))
          }
          return Output.info("cosigned \(r.checkpoint)\(was); wrote log/checkpoint of '\(log)'")
        }
      }
      throw TsukuError(
        .conflict, "log/checkpoint of '\(log)' kept moving while it was being cosigned; the cosignature was not written, run it again")
    }

    /// `--name`, else the name in the key's `.vkey` file.
    func witnessName() throws -> String {
      if let name { return name }
      let path = key + ".vkey"
      guard let data = try FileIO.readFileIfPresent(path), let text = String(data: data, encoding: .utf8) else {
        throw TsukuError(.usage, "give --name NAME: no '\(path)' names the witness")
      }
      return try CosignatureVerifier(vkey: text.trimmingCharacters(in: .whitespacesAndNewlines)).name
    }

    /// The store's newest root reachable from `anchor`, each version verified by the one
    /// before it (the log keys rotate with the root).
    static func newestRoot(_ anchor: TrustedRoot, _ store: any ObjectReader) throws -> TrustedRoot {
      var root = anchor
      for _ in 0..<Limits.maxRootRotations {
        guard let next = try store.readDocument(.root(root.version + 1), maxSize: Limits.root) else { break }
        root = try root.next(next, what: "root version \(root.version + 1) of '\(store.location)'")
      }
      return root
    }
  }

  struct WitnessKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "keygen",
      abstract: "Make a witness key pair: FILE (private), FILE.pub and FILE.vkey; print the verifier key.",
      discussion: """
        The verifier key (NAME+hash+base64(0x04 || key), C2SP tlog-cosignature) is what clients \
        give to 'tsuku init --witness'. NAME should be a schema-less URL naming the witness \
        (example.com/witness1); one key serves one name only.
        """)
    @Option(help: "The witness name.") var name: String
    @Option(help: "Where to write the private key.") var out: String
    @OptionGroup var encryption: KeyEncryptionOptions
    @Flag(help: "Print the verifier key and the files as JSON.") var json = false

    func run() throws {
      let key = try SigningKey.generate()
      let verifier = try CosignatureSigner(name: name, key: key).verifier
      try KeyFile.write(key, to: out, note: "witness \(name)", passphrase: try encryption.passphrase())
      try writeFileAtomically(Data((verifier.vkey + "\n").utf8), to: out + ".vkey")
      if json {
        struct Out: Encodable { var name: String, vkey: String, private_key: String, public_key: String, vkey_file: String }
        return Output.json(
          Out(name: name, vkey: verifier.vkey, private_key: out, public_key: out + ".pub", vkey_file: out + ".vkey"))
      }
      Output.line(verifier.vkey)
    }
  }
}
