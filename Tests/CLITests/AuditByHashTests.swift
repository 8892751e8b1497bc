import Foundation
import Store
import Sync
import Testing

import TestSupport

/// `tsuku audit --hash` and `--name` against the built binary: a responder's question "did
/// this machine ever receive, or serve, these bytes?", answered from the audit log of a home
/// that synced for real (from packs, or blob by blob) from a directory store.
@Suite struct AuditByHashTests {
  /// A registry of the sample (recipes and golden files) published with `packs` (`always`: a
  /// cold sync takes them whole; `never`: it fetches blob by blob), and a home that trusts it.
  static func world(packs: String) throws -> CLIWorld {
    let w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { try w.run("registry", "keygen", "--out", w.k(role)) }
    var r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    r = try publish(w, recipes: sample + "/recipes", packs: packs)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    return w
  }

  static let sample = checkout + "/registry-index/source"

  @discardableResult
  static func publish(_ w: CLIWorld, recipes: String, packs: String) throws -> CommandResult {
    try w.run(
      "registry", "publish", "--recipes", recipes, "--critical", sample + "/embedded", "--golden", sample + "/golden",
      "--key", w.k("index"), "--to", w.store, "--packs", packs)
  }

  static var fzfHash: String { SHA256.hash(FileManager.default.contents(atPath: sample + "/recipes/f/fzf.toml")!).hex }

  /// `tsuku audit ARGS --json`: the exit status and the report (nil when stdout is not one).
  static func audit(_ w: CLIWorld, _ args: String...) throws -> (CommandResult, [String: Any]?) {
    let r = try runTsuku(["audit"] + args + ["--json"], env: w.env, binary: w.bin, killAfter: 60)
    return (r, try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
  }

  static func blobs(_ report: [String: Any]?) -> [[String: Any]] { report?["blobs"] as? [[String: Any]] ?? [] }

  static func auditLines(_ w: CLIWorld) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: w.dir.file("home/store-audit.log"), encoding: .utf8)
    return try text.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
  }

  @Test func aHomeSyncedFromPacksAnswersReceivedWithIndexVersionAndSource() throws {
    let w = try Self.world(packs: "always")
    let r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    let packs = try FileManager.default.contentsOfDirectory(atPath: w.dir.file("home/cache/packs"))
    #expect(packs.contains { $0.hasSuffix(".pack") }, "the cold sync took the packs")
    let (a, report) = try Self.audit(w, "--hash", Self.fzfHash)
    #expect(a.status == 0, "\(a.stderr)")
    let blob = try #require(Self.blobs(report).first)
    #expect(blob["received"] as? Bool == true)
    #expect(blob["served"] as? Bool == false)
    #expect(blob["kind"] as? String == "recipe")
    #expect(blob["names"] as? [String] == ["fzf"])
    let receipt = try #require((blob["receipts"] as? [[String: Any]])?.first)
    #expect(receipt["index_version"] as? Int == 1)
    #expect(receipt["source"] as? String == w.store)
    #expect(receipt["via"] as? String == "sync")
    #expect(receipt["time"] as? String != nil)
    // The text form says the same.
    let text = try w.run("audit", "--hash", Self.fzfHash)
    #expect(text.status == 0 && text.out.contains("received  yes") && text.out.contains("index v1"), "\(text.out)")
  }

  @Test func afterShowTheBlobIsServedWithItsTime() throws {
    let w = try Self.world(packs: "always")
    #expect(try w.run("update-registry").status == 0)
    #expect(try w.run("show", "fzf").status == 0)
    let (a, report) = try Self.audit(w, "--hash", Self.fzfHash)
    #expect(a.status == 0, "\(a.stderr)")
    let blob = try #require(Self.blobs(report).first)
    #expect(blob["served"] as? Bool == true)
    #expect(blob["served_count"] as? Int == 1)
    let served = try #require(blob["last_served"] as? [String: Any])
    #expect(Timestamp.parse(served["time"] as? String ?? "") != nil)
    #expect(served["via"] as? String == "cache" && served["index_version"] as? Int == 1)
  }

  @Test func aHashNeverReceivedExits3() throws {
    let w = try Self.world(packs: "always")
    #expect(try w.run("update-registry").status == 0)
    let never = String(repeating: "ab", count: 32)
    let (a, report) = try Self.audit(w, "--hash", never)
    #expect(a.status == 3, "\(a.stderr)")
    #expect(report?["seen"] as? Bool == false)
    let blob = try #require(Self.blobs(report).first)
    #expect(blob["received"] as? Bool == false && blob["served"] as? Bool == false)
    let text = try w.run("audit", "--hash", never)
    #expect(text.status == 3 && text.out.contains("never received or served"), "\(text.out)")
  }

  @Test func nameFindsTheHashOfAnOldVersionAfterTheRegistryChangedIt() throws {
    let w = try Self.world(packs: "always")
    #expect(try w.run("update-registry").status == 0)
    let changed = w.dir.file("changed")
    try FileManager.default.copyItem(atPath: Self.sample + "/recipes", toPath: changed)
    let fzf = changed + "/f/fzf.toml"
    try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# compromised\n").write(toFile: fzf, atomically: true, encoding: .utf8)
    let newHash = SHA256.hash(FileManager.default.contents(atPath: fzf)!).hex
    #expect(try Self.publish(w, recipes: changed, packs: "always").status == 0)
    #expect(try w.run("update-registry").status == 0)
    let (a, report) = try Self.audit(w, "--name", "fzf")
    #expect(a.status == 0, "\(a.stderr)")
    let byHash = Dictionary(Self.blobs(report).map { ($0["sha256"] as? String ?? "", $0) }) { a, _ in a }
    let old = try #require(byHash[Self.fzfHash], "the old hash, no longer in the index")
    let new = try #require(byHash[newHash])
    #expect((old["receipts"] as? [[String: Any]])?.first?["index_version"] as? Int == 1)
    #expect((new["receipts"] as? [[String: Any]])?.first?["index_version"] as? Int == 2)
    #expect(old["received"] as? Bool == true && new["received"] as? Bool == true)
    // Golden files of the name are found too.
    #expect(Self.blobs(report).contains { $0["kind"] as? String == "golden" })
    #expect(try Self.audit(w, "--name", "no-such-tool").0.status == 3)
  }

  @Test func auditJSONHasAStableShape() throws {
    let w = try Self.world(packs: "always")
    #expect(try w.run("update-registry").status == 0)
    #expect(try w.run("show", "fzf").status == 0)
    let (a, report) = try Self.audit(w, "--hash", Self.fzfHash)
    #expect(a.status == 0)
    let top = try #require(report)
    #expect(Set(top.keys) == ["sha256", "seen", "history_since", "blobs"])
    #expect(top["sha256"] as? String == Self.fzfHash && top["seen"] as? Bool == true)
    let blob = try #require(Self.blobs(top).first)
    #expect(
      Set(blob.keys) == [
        "sha256", "names", "kind", "received", "served", "receipts", "receipt_count", "served_count", "first_served",
        "last_served", "refusals",
      ])
    let receipt = try #require((blob["receipts"] as? [[String: Any]])?.first)
    #expect(Set(receipt.keys) == ["time", "source", "index_version", "via"])
    let (_, byName) = try Self.audit(w, "--name", "fzf")
    #expect(Set(try #require(byName).keys) == ["name", "seen", "history_since", "blobs"])
  }

  @Test func aMalformedHashExits64NamingIt() throws {
    let w = try Self.world(packs: "never")
    for bad in ["xyz", String(repeating: "a", count: 63), String(repeating: "g", count: 64)] {
      let r = try w.run("audit", "--hash", bad)
      #expect(r.status == 64)
      #expect(r.stderr.contains("invalid --hash '\(bad)'"), "\(r.stderr)")
    }
  }

  @Test func theRecordOfASyncOfManyBlobsIsOneLine() throws {
    // Without packs a cold sync fetches every recipe and golden file one by one.
    let w = try Self.world(packs: "never")
    #expect(try w.run("update-registry").status == 0)
    let lines = try Self.auditLines(w)
    let receives = lines.filter { $0["event"] as? String == "receive" }
    #expect(receives.count == 1)
    #expect(!lines.contains { $0["event"] as? String == "fetch" })
    #expect(lines.count <= 3, "the receive line and at most the trust changes")
    let count = try #require(receives.first?["count"] as? Int)
    #expect(count > 128 + 400, "every recipe and golden file of the sample, and the index's parts")
    // Past the inline limit the list is in the side folder, one line per blob.
    let file = try #require(receives.first?["blobs_file"] as? String)
    let side = try String(contentsOfFile: w.dir.file("home/store-audit.log.d/" + file), encoding: .utf8)
    #expect(side.split(separator: "\n").count == count)
    #expect(side.contains("\(Self.fzfHash) recipe fzf\n"))
    // The same from packs: one line.
    let p = try Self.world(packs: "always")
    #expect(try p.run("update-registry").status == 0)
    #expect(try Self.auditLines(p).filter { $0["event"] as? String == "receive" }.count == 1)
  }

  @Test func anOnDemandFetchIsRecorded() throws {
    let w = try Self.world(packs: "never")
    #expect(try w.run("update-registry", "--no-golden").status == 0)
    let r = try w.run("plan", "fzf", "--platform", "linux-amd64")
    #expect(r.status == 0, "\(r.stderr)")
    let golden = SHA256.hash(r.stdout).hex
    let (a, report) = try Self.audit(w, "--hash", golden)
    #expect(a.status == 0, "\(a.stderr)")
    let blob = try #require(Self.blobs(report).first)
    #expect(blob["kind"] as? String == "golden")
    #expect((blob["receipts"] as? [[String: Any]])?.first?["via"] as? String == "read")
    #expect((blob["receipts"] as? [[String: Any]])?.first?["source"] as? String == w.store)
    #expect(blob["served"] as? Bool == true && (blob["last_served"] as? [String: Any])?["via"] as? String == "source")
  }
}
