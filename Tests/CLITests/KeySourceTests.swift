import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Private keys that never touch the disk: `--key env:NAME`, `--key -`, `--signer CMD`, and
/// keys encrypted under a passphrase. Each runs the built binary.
@Suite struct KeySourceTests {
  let sample = checkout + "/registry-index/source"

  /// Keys root, index, revocation in `w`; a store whose index role is `indexPub` (default: the
  /// index key's .pub).
  func world(indexPub: String? = nil) throws -> CLIWorld {
    let w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] {
      #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0)
    }
    let r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key",
      indexPub ?? w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    return w
  }

  func publish(_ w: CLIWorld, _ extra: [String], env: [String: String] = [:], stdin: Data? = nil) throws
    -> CommandResult
  {
    try runTsuku(
      ["registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--to", w.store]
        + extra,
      env: w.env.merging(env) { $1 }, binary: w.bin, killAfter: 120, stdin: stdin)
  }

  /// Every regular file under `dir` (following none of its links), with its bytes.
  func files(under dir: String, since: Date? = nil) -> [(String, Data)] {
    guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
    var out = [(String, Data)]()
    for case let rel as String in e {
      let path = dir + "/" + rel
      guard let a = try? FileManager.default.attributesOfItem(atPath: path),
        a[.type] as? FileAttributeType == .typeRegular,
        (a[.size] as? Int ?? 0) < 64 << 20
      else { continue }
      if let since, let m = a[.modificationDate] as? Date, m < since { continue }
      if let d = FileManager.default.contents(atPath: path) { out.append((path, d)) }
    }
    return out
  }

  /// The forms a key's secret could take in a file: the key file's text, the seed raw, in
  /// base64 and in hex.
  func secretForms(_ keyFile: String) throws -> [Data] {
    let text = try Data(contentsOf: URL(fileURLWithPath: keyFile))
    let f = try JSONSerialization.jsonObject(with: text) as! [String: Any]
    let seed = Data(base64Encoded: f["private"] as! String)!
    return [
      text, seed, Data(seed.base64EncodedString().utf8), Data(seed.map { String(format: "%02x", $0) }.joined().utf8),
    ]
  }

  /// The store's files and their bytes, to show that nothing was written.
  func snapshot(_ w: CLIWorld) -> [String: Data] {
    Dictionary(uniqueKeysWithValues: files(under: w.dir.file("store")))
  }

  @Test func keyFromAnEnvironmentVariablePublishesAndNeverReachesTheDisk() throws {
    let w = try world()
    let start = Date().addingTimeInterval(-1)
    let tmp = w.dir.file("tmp")
    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    let keyText = try String(contentsOfFile: w.k("index"), encoding: .utf8)
    let env = ["TSUKU_TEST_INDEX_KEY": keyText, "TMPDIR": tmp]
    // The key leaves its file before the command runs: only the variable holds it.
    let forms = try secretForms(w.k("index"))
    try FileManager.default.moveItem(atPath: w.k("index"), toPath: w.dir.path + "-index.key")
    defer { try? FileManager.default.removeItem(atPath: w.dir.path + "-index.key") }
    var r = try publish(w, ["--key", "env:TSUKU_TEST_INDEX_KEY", "--stage", w.dir.file("staged.json")], env: env)
    #expect(r.status == 0, "\(r.stderr)")
    r = try publish(w, ["--key", "env:TSUKU_TEST_INDEX_KEY", "--golden", sample + "/golden"], env: env)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("show", "cmake")
    #expect(r.status == 0, "\(r.stderr)")
    // The store, the staged file, the home, the command's TMPDIR and whatever changed in /tmp.
    var written = files(under: w.dir.path)
    written += files(under: "/tmp", since: start).filter { !$0.0.hasPrefix(w.dir.path) }
    #expect(written.contains { $0.0.hasSuffix("staged.json") })
    #expect(written.contains { $0.0.hasSuffix("index.json") })
    for (path, data) in written {
      for form in forms { #expect(data.range(of: form) == nil, "the index key is in '\(path)'") }
    }
    #expect(!r.stderr.contains(keyText))
    // An unset variable names itself, not a key.
    r = try publish(w, ["--key", "env:TSUKU_NO_SUCH_KEY"])
    #expect(r.status == 64)
    #expect(r.stderr == "error: environment variable 'TSUKU_NO_SUCH_KEY' (--key env:TSUKU_NO_SUCH_KEY) is not set\n")
  }

  @Test func keyFromStandardInputSignsAndIsTakenOnlyOnce() throws {
    let w = try world()
    let keyText = try Data(contentsOf: URL(fileURLWithPath: w.k("index")))
    var r = try publish(w, ["--key", "-"], stdin: keyText)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("published index version 1"))
    r = try runTsuku(
      ["registry", "resign", "--key", "-", "--revocation-key", "-", "--to", w.store], env: w.env, binary: w.bin,
      killAfter: 60,
      stdin: keyText)
    #expect(r.status == 64)
    #expect(r.stderr == "error: '--key -' given twice: standard input holds one key\n")
    r = try publish(w, ["--key", "-"], stdin: Data("{\"type\":\"ed25519\"}".utf8))
    #expect(r.status == 64)
    #expect(r.stderr.contains("the key on standard input (--key -) is not a tsuku private key"))
  }

  // MARK: external signers

  /// An Ed25519 key made by the openssl command (a stand-in for an HSM), its `.pub` file, and
  /// a signer script over it whose `sign` step runs `signBody` (default: sign with openssl).
  func signer(_ w: CLIWorld, name: String = "signer", signBody: String? = nil) throws -> (command: String, pub: String)
  {
    let dir = w.dir.file(name)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let gen = try runProcess("/usr/bin/env", ["openssl", "genpkey", "-algorithm", "ed25519", "-out", dir + "/k.pem"])
    #expect(gen.status == 0, "\(gen.err)")
    let der = try runProcess("/usr/bin/env", ["openssl", "pkey", "-in", dir + "/k.pem", "-pubout", "-outform", "DER"])
    let key = PublicKey(ed25519: [UInt8](der.out.suffix(32)))
    let pub = "{\"keyid\":\"\(key.keyID)\",\"public\":\"\(key.public)\",\"type\":\"ed25519\"}\n"
    try pub.write(toFile: dir + "/k.pub", atomically: true, encoding: .utf8)
    let sign =
      signBody ?? "cat > \"$D/msg\" && openssl pkeyutl -sign -inkey \"$D/k.pem\" -rawin -in \"$D/msg\" | base64 -w0"
    let script = """
      #!/bin/sh
      D='\(dir)'
      case "$1" in
        public-key) cat "$D/k.pub" ;;
        sign) [ "$2" = '\(key.keyID)' ] || exit 9; \(sign) ;;
        *) exit 2 ;;
      esac

      """
    try script.write(toFile: dir + "/sign.sh", atomically: true, encoding: .utf8)
    return ("sh '\(dir)/sign.sh'", dir + "/k.pub")
  }

  func runProcess(_ exe: String, _ args: [String]) throws -> (status: Int32, out: Data, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let o = Pipe()
    let e = Pipe()
    (p.standardOutput, p.standardError) = (o, e)
    try p.run()
    let out = o.fileHandleForReading.readDataToEndOfFile()
    let err = e.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, out, String(decoding: err, as: UTF8.self))
  }

  @Test func anExternalSignerSignsThePublishAndClientsVerifyIt() throws {
    let probe = try CLIWorld()
    let s = try signer(probe)
    let w = try world(indexPub: s.pub)
    var r = try publish(w, ["--signer", s.command])
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("update-registry")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try w.run("show", "cmake").status == 0)
    // resign and revoke take it too (resign: same role; revoke: a signer for another role is refused).
    r = try w.run("registry", "resign", "--signer", s.command, "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
  }

  func refused(signBody: String, env: [String: String] = [:]) throws -> CommandResult {
    let probe = try CLIWorld()
    let s = try signer(probe, signBody: signBody)
    let w = try world(indexPub: s.pub)
    let before = snapshot(w)
    let r = try publish(w, ["--signer", s.command], env: env)
    #expect(snapshot(w) == before, "the store changed")
    // One error line, after the progress lines (and what the signer itself printed).
    #expect(r.stderr.split(separator: "\n").last?.hasPrefix("error: signer '") == true, "\(r.stderr)")
    #expect(
      r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") || $0.hasPrefix("  ") }.count == 1, "\(r.stderr)")
    return r
  }

  @Test func aSignerThatFailsIsRefusedAndNothingIsWritten() throws {
    let r = try refused(signBody: "echo 'kms: access denied' >&2; exit 3")
    #expect(r.status == 1, "\(r.stderr)")
    #expect(r.stderr.contains("kms: access denied"))
    #expect(r.stderr.contains("failed (sign: exit 3); nothing was signed"), "\(r.stderr)")
  }

  @Test func aSignerThatReturnsAWrongSignatureIsRefusedAndNothingIsWritten() throws {
    // A well-formed signature by another key.
    let other =
      "cat > /dev/null; openssl genpkey -algorithm ed25519 -out \"$D/o.pem\" && echo x > \"$D/m\" && openssl pkeyutl -sign -inkey \"$D/o.pem\" -rawin -in \"$D/m\" | base64 -w0"
    var r = try refused(signBody: other)
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("returned a signature that does not verify against its key"), "\(r.stderr)")
    r = try refused(signBody: "cat > /dev/null; echo not-a-signature")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("printed no 64-byte base64 signature"), "\(r.stderr)")
  }

  @Test func aSignerThatHangsIsKilledAtItsTimeLimitAndNothingIsWritten() throws {
    let r = try refused(signBody: "exec sleep 300", env: ["TSUKU_SIGNER_TIMEOUT": "1"])
    #expect(r.status == 5, "\(r.stderr)")
    #expect(r.stderr.contains("did not answer within 1 second"), "\(r.stderr)")
  }

  // MARK: encrypted keys

  @Test func anEncryptedKeyNeedsItsPassphraseAndAWrongOneIsOneLine() throws {
    let w = try CLIWorld()
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    var r = try w.run(
      "registry", "keygen", "--out", w.k("index"), "--passphrase-env", "NEW_PASS", env: ["NEW_PASS": "correct horse"])
    #expect(r.status == 0, "\(r.stderr)")
    let text = try String(contentsOfFile: w.k("index"), encoding: .utf8)
    #expect(!text.contains("\"private\""))
    #expect(text.contains("\"kdf\" : \"scrypt\"") && text.contains("\"cipher\" : \"aes-256-gcm\""))
    // The public half needs no passphrase: the private file is accepted as --index-key.
    r = try w.run(
      "registry", "init", "--to", w.store, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index"),
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"))
    #expect(r.status == 0, "\(r.stderr)")
    let before = snapshot(w)
    r = try publish(w, ["--key", w.k("index")], env: ["TSUKU_KEY_PASSPHRASE": "wrong horse"])
    #expect(r.status == 64)
    #expect(r.stderr == "error: wrong passphrase for key file '\(w.k("index"))' (or the file is damaged)\n")
    r = try publish(w, ["--key", w.k("index")])
    #expect(r.status == 64)
    #expect(r.stderr.contains("is encrypted: set TSUKU_KEY_PASSPHRASE or run on a terminal"), "\(r.stderr)")
    #expect(snapshot(w) == before)
    r = try publish(w, ["--key", w.k("index")], env: ["TSUKU_KEY_PASSPHRASE": "correct horse"])
    #expect(r.status == 0, "\(r.stderr)")
    // The same text from a variable works too.
    r = try publish(
      w, ["--key", "env:K", "--expires-days", "20"], env: ["K": text, "TSUKU_KEY_PASSPHRASE": "correct horse"])
    #expect(r.status == 0, "\(r.stderr)")
  }
}
