import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A registry with a transparency log, its witnesses and a client that requires a quorum of
/// them: all through the built binary, over stores on disk.
final class WitnessWorld: @unchecked Sendable {
  let w: CLIWorld
  var store: String { w.store }
  var storePath: String { w.dir.file("store") }
  static let sample = checkout + "/registry-index/source"

  init() throws {
    w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation", "log"] {
      try #require(try w.run("registry", "keygen", "--out", w.k(role)).status == 0)
    }
    let r = try w.run(
      "registry", "init", "--to", store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--log-key", w.k("log") + ".pub", "--sign", w.k("root"))
    try #require(r.status == 0, "\(r.stderr)")
  }

  /// Makes witness `name`'s key pair (keys/<name>.key) and returns its verifier key.
  func witnessKey(_ name: String) throws -> String {
    let r = try w.run("registry", "witness", "keygen", "--name", name, "--out", w.k(name))
    try #require(r.status == 0, "\(r.stderr)")
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Publishes the sample recipes to `to` (default: the store), with a line `mark` added to
  /// fzf so every publish changes something.
  @discardableResult
  func publish(_ mark: String, to: String? = nil) throws -> CommandResult {
    let recipes = w.dir.file("recipes-" + mark)
    try FileManager.default.copyItem(atPath: Self.sample + "/recipes", toPath: recipes)
    let fzf = recipes + "/f/fzf.toml"
    try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# \(mark)\n").write(toFile: fzf, atomically: true, encoding: .utf8)
    let r = try w.run(
      "registry", "publish", "--recipes", recipes, "--critical", Self.sample + "/embedded", "--golden",
      Self.sample + "/golden", "--key", w.k("index"), "--allow-removals", "--to", to ?? store,
      env: ["TSUKU_LOG_KEY": w.k("log")])
    #expect(r.status == 0, "\(r.stderr)")
    return r
  }

  /// `registry witness` as witness `name`, its state in state-<name>.
  func witness(_ name: String, log: String? = nil, extra: [String] = []) throws -> CommandResult {
    try w.run(
      ["registry", "witness", "--log", log ?? store, "--key", w.k(name), "--state", w.dir.file("state-" + name),
       "--root", storePath + "/root/1.root.json"] + extra)
  }

  /// The client trusts the store's root and requires `quorum` of `witnesses`.
  func initClient(witnesses: [String], quorum: Int) throws {
    let r = try w.run(
      ["init", "--root", storePath + "/root/1.root.json", "--source", store]
        + witnesses.flatMap { ["--witness", $0] } + ["--witness-quorum", String(quorum)])
    try #require(r.status == 0, "\(r.stderr)")
  }

  func checkpoint(_ path: String? = nil) throws -> SignedNote {
    let data = try #require(FileManager.default.contents(atPath: (path ?? storePath) + "/log/checkpoint"))
    return try SignedNote.parse([UInt8](data))
  }

  func setCheckpoint(_ note: SignedNote) throws {
    try Data(note.serialized()).write(to: URL(fileURLWithPath: storePath + "/log/checkpoint"))
  }

  /// A copy of the store as it is now, at `name`.
  func copyStore(_ name: String) throws -> String {
    let path = w.dir.file(name)
    try FileManager.default.copyItem(atPath: storePath, toPath: path)
    return path
  }
}

@Suite struct WitnessTests {
  @Test func aCheckpointShortOfTheWitnessQuorumIsRefused() throws {
    let x = try WitnessWorld()
    let (a, b) = (try x.witnessKey("witness-a"), try x.witnessKey("witness-b"))
    try x.publish("one")
    try x.initClient(witnesses: [a, b], quorum: 2)
    // No cosignature, then one of the two required: refused, and the client keeps nothing new.
    var r = try x.w.run("update-registry")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("has 0 of 2 required witness cosignatures (none)"), "\(r.stderr)")
    r = try x.witness("witness-a")
    #expect(r.status == 0, "\(r.stderr)")
    r = try x.w.run("update-registry")
    #expect(r.status == 4, "\(r.stderr)")
    let size = try Checkpoint.parse(try x.checkpoint().text)
    let root = size.rootHash.prefix(4).map { String(format: "%02x", $0) }.joined()
    #expect(r.stderr.contains("checkpoint 1 \(root) has 1 of 2 required witness cosignatures (witness-a)"), "\(r.stderr)")
    #expect(r.stderr.contains("no valid cosignature from: witness-b"), "\(r.stderr)")
    // The second witness makes the quorum: accepted.
    r = try x.witness("witness-b")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try x.checkpoint().signatures.count == 3)
    r = try x.w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
  }

  @Test func aWitnessRefusesToCosignAnInconsistentCheckpoint() throws {
    let x = try WitnessWorld()
    _ = try x.witnessKey("witness-a")
    try x.publish("one")
    #expect(try x.witness("witness-a").status == 0)
    // A second store with the same keys and the same first entry; from there the two logs
    // take other entries: a split view, each checkpoint signed by the real log key.
    let other = try x.copyStore("fork")
    try x.publish("two")
    try x.publish("two-fork", to: "file://" + other)
    var r = try x.witness("witness-a")
    #expect(r.status == 0, "\(r.stderr)")
    let seen = try Checkpoint.parse(try x.checkpoint().text)
    let forkBefore = try x.checkpoint(other)
    let fork = try Checkpoint.parse(forkBefore.text)
    #expect(fork.size == seen.size && fork.rootHash != seen.rootHash)

    // The same size with another root.
    r = try x.witness("witness-a", log: "file://" + other)
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("(\(fork)) forks from the one this witness cosigned (\(seen))"), "\(r.stderr)")
    // A larger tree that does not extend the cosigned one: no consistency proof verifies.
    try x.publish("three-fork", to: "file://" + other)
    let bigger = try Checkpoint.parse(try x.checkpoint(other).text)
    r = try x.witness("witness-a", log: "file://" + other)
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("(\(bigger)) forks from the one this witness cosigned (\(seen))"), "\(r.stderr)")
    // Nothing was cosigned: the fork's checkpoint has the log's signature only.
    #expect(try x.checkpoint(other).signatures.count == 1)
    // The real log still extends: cosigned.
    try x.publish("three")
    #expect(try x.witness("witness-a").status == 0)
  }

  @Test func aWitnessRefusesToGoBackwards() throws {
    let x = try WitnessWorld()
    _ = try x.witnessKey("witness-a")
    try x.publish("one")
    let old = try x.copyStore("at-one")
    try x.publish("two")
    var r = try x.witness("witness-a")
    #expect(r.status == 0, "\(r.stderr)")
    let seen = try Checkpoint.parse(try x.checkpoint().text)
    // The store rolled back to its first checkpoint (a truncated log, signed by the real key).
    r = try x.witness("witness-a", log: "file://" + old)
    #expect(r.status == 4, "\(r.stderr)")
    let back = try Checkpoint.parse(try x.checkpoint(old).text)
    #expect(r.stderr.contains("(\(back)) is smaller than the one this witness cosigned (\(seen))"), "\(r.stderr)")
    #expect(try x.checkpoint(old).signatures.count == 1)
    // Its state still holds the newer checkpoint: a second try is refused too.
    #expect(try x.witness("witness-a", log: "file://" + old).status == 4)
    // The same checkpoint again is fine (cosigned again).
    #expect(try x.witness("witness-a").status == 0)
  }

  @Test func aForgedCosignatureDoesNotCount() throws {
    let x = try WitnessWorld()
    let a = try x.witnessKey("witness-a")
    try x.publish("one")
    try x.initClient(witnesses: [a], quorum: 1)
    let note = try x.checkpoint()
    let real = try CosignatureVerifier(vkey: a)
    // A line under witness-a's name and key hash, made with another key.
    let forger = try CosignatureSigner(name: "witness-a", key: try SigningKey.generate())
    var forged = try forger.cosign(checkpointText: note.text, time: 1_700_000_000)
    forged.keyHash = real.keyHash
    try x.setCheckpoint(note.adding(forged))
    var r = try x.w.run("update-registry")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("has 0 of 1 required witness cosignatures (none)"), "\(r.stderr)")
    // A real cosignature of another checkpoint text (replayed) does not count either.
    let key = try KeyFile.readPrivate(x.w.k("witness-a"))
    let other = note.text.replacingOccurrences(of: "\n1\n", with: "\n2\n")
    let replayed = try CosignatureSigner(name: "witness-a", key: key).cosign(checkpointText: other, time: 1_700_000_000)
    try x.setCheckpoint(note.adding(replayed))
    r = try x.w.run("update-registry")
    #expect(r.status == 4, "\(r.stderr)")
    // The real witness's cosignature is accepted.
    try x.setCheckpoint(note)
    #expect(try x.witness("witness-a").status == 0)
    r = try x.w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
  }

  @Test func duplicateCosignaturesFromOneWitnessCountOnce() throws {
    let x = try WitnessWorld()
    let (a, b) = (try x.witnessKey("witness-a"), try x.witnessKey("witness-b"))
    try x.publish("one")
    try x.initClient(witnesses: [a, b], quorum: 2)
    let note = try x.checkpoint()
    let signer = try CosignatureSigner(name: "witness-a", key: try KeyFile.readPrivate(x.w.k("witness-a")))
    var twice = note
    for t: UInt64 in [1_700_000_000, 1_700_000_001] {
      twice.signatures.append(try signer.cosign(checkpointText: note.text, time: t))
    }
    try x.setCheckpoint(twice)
    #expect(try x.checkpoint().signatures.count == 3)
    let r = try x.w.run("update-registry")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("has 1 of 2 required witness cosignatures (witness-a)"), "\(r.stderr)")
  }

  @Test func initRefusesABadWitnessKeyOrQuorumAndKeepsWitnessesWhenRunAgain() throws {
    let x = try WitnessWorld()
    let a = try x.witnessKey("witness-a")
    try x.publish("one")
    let base = ["init", "--root", x.storePath + "/root/1.root.json", "--source", x.store]
    #expect(try x.w.run(base + ["--witness", a, "--witness-quorum", "2"]).status == 64)
    #expect(try x.w.run(base + ["--witness", a + "x", "--witness-quorum", "1"]).status == 64)
    #expect(try x.w.run(base + ["--witness", a, "--witness", a, "--witness-quorum", "1"]).status == 64)
    #expect(try x.w.run(base + ["--witness", a]).status == 64)
    try x.initClient(witnesses: [a], quorum: 1)
    // Init again without witness flags keeps them.
    #expect(try x.w.run(base).status == 0)
    let config = try #require(try Home(path: x.w.dir.file("home")).readConfig())
    #expect(config.witnesses == [a] && config.witnessQuorum == 1)
    #expect(try x.w.run("update-registry").status == 4)
  }

  @Test func aWitnessPrintsOrWritesTheCosignedCheckpointWithoutTouchingTheStore() throws {
    let x = try WitnessWorld()
    let a = try CosignatureVerifier(vkey: try x.witnessKey("witness-a"))
    try x.publish("one")
    let before = try x.checkpoint()
    var r = try x.witness("witness-a", extra: ["--print"])
    #expect(r.status == 0, "\(r.stderr)")
    let printed = try SignedNote.parse([UInt8](r.stdout))
    #expect(printed.text == before.text && printed.verifiedCosigners([a]) == [a])
    #expect(try x.checkpoint() == before)
    r = try x.witness("witness-a", extra: ["--out", x.w.dir.file("cosigned")])
    #expect(r.status == 0, "\(r.stderr)")
    let written = try SignedNote.parse([UInt8](try #require(FileManager.default.contents(atPath: x.w.dir.file("cosigned")))))
    #expect(written.text == before.text && written.verifiedCosigners([a]) == [a])
    #expect(try x.checkpoint() == before)
  }

  @Test func aWitnessWritesItsCosignatureIntoAGitStoreAndKeepsTheOthers() throws {
    let x = try WitnessWorld()
    let (a, b) = (try CosignatureVerifier(vkey: try x.witnessKey("witness-a")), try CosignatureVerifier(vkey: try x.witnessKey("witness-b")))
    let repo = try makeGitRepository(at: x.w.dir.file("reg.git"), bare: true)
    let git = "git+file://\(repo)?dir=store"
    // The same registry in a git store: its root copied in, then a publish there.
    let root = try #require(FileManager.default.contents(atPath: x.storePath + "/root/1.root.json"))
    try StoreURL.open(git).apply(StoreChange(documents: [(.root(1), root)]))
    try x.publish("one", to: git)
    for name in ["witness-a", "witness-b"] {
      let r = try x.witness(name, log: git)
      #expect(r.status == 0, "\(r.stderr)")
    }
    let data = try #require(try StoreURL.openReader(git).readDocument(.checkpoint, maxSize: SignedNote.maxBytes))
    let note = try SignedNote.parse([UInt8](data))
    #expect(note.verifiedCosigners([a, b]) == [a, b])
    #expect(note.signatures.count == 3)
  }
}

/// The witness commands print JSON with --json: the verifier key and files of keygen, the
/// checkpoint cosigned and where it went.
@Suite struct WitnessJSONTests {
  @Test func keygenAndCosignPrintJSON() throws {
    let x = try WitnessWorld()
    var r = try x.w.run("registry", "witness", "keygen", "--name", "witness-j", "--out", x.w.k("witness-j"), "--json")
    #expect(r.status == 0, "\(r.stderr)")
    let k = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect((k["vkey"] as? String)?.hasPrefix("witness-j+") == true)
    #expect(k["vkey_file"] as? String == x.w.k("witness-j") + ".vkey")
    try x.publish("one")
    r = try x.witness("witness-j", extra: ["--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let c = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    #expect(c["witness"] as? String == "witness-j")
    #expect((c["checkpoint"] as? String)?.isEmpty == false)
    #expect(c["previous"] == nil)
    #expect((c["written_to"] as? String)?.hasSuffix("(log/checkpoint)") == true)
  }
}
