import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A refresh that fails while the cache is still within its TTL (`--force`) is never silent:
/// one warning names the source and why, whatever the cause, and the cache is served.
@Suite struct RefreshFailureTests {
  let fzf = FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml")!

  @Test func forcedRefreshRefusedAsARollbackWarnsNamingTheSourceAndWhy() throws {
    let w = try CLIWorld()
    try w.setUp()
    let v1 = try Data(contentsOf: URL(fileURLWithPath: w.dir.file("store/index.json")))
    var r = try w.run("registry", "resign", "--key", w.k("index"), "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try w.run("update-registry").status == 0)
    // The source rolls back to version 1; the client trusts version 2.
    try v1.write(to: URL(fileURLWithPath: w.dir.file("store/index.json")))
    r = try w.run("show", "fzf", "--force")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    let lines = r.stderr.split(separator: "\n").map(String.init)
    #expect(lines.count == 1, "\(r.stderr)")
    #expect(lines.first?.hasPrefix("warning: could not refresh from '\(w.store)': ") == true, "\(r.stderr)")
    #expect(lines.first?.contains("version 1") == true, "\(r.stderr)")
    #expect(lines.first?.contains("; using the cached index (version 2, confirmed ") == true, "\(r.stderr)")
  }

  @Test func forcedRefreshWithAWrongSecretWarnsNamingTheSourceAndWhy() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    // A bucket that refuses the signature of every request, as S3 does for a wrong secret.
    let refusal = Data(
      "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>".utf8)
    let bucket = try LoopbackServer { _ in .respond(403, body: refusal) }
    let source = "s3://registry/v1?endpoint=\(bucket.url)"
    let r = try w.run(
      "show", "fzf", "--force",
      env: [
        "TSUKU_SOURCES": source, "TSUKU_S3_ACCESS_KEY_ID": "AKIDEXAMPLE", "TSUKU_S3_SECRET_ACCESS_KEY": "wrong",
      ])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    #expect(
      r.stderr.hasPrefix(
        "warning: could not refresh from '\(source)': 's3://registry/v1': the secret key for access key 'AKIDEXAMPLE' is wrong (SignatureDoesNotMatch); using the cached index (version 1, confirmed "
      ), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
  }
}
