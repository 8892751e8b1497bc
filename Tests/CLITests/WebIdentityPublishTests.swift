import Foundation
import Store
import Testing

import TestSupport

/// Publishing from CI with no stored bucket secret, through the binary: a web identity token
/// (minted by a loopback OIDC issuer the test runs) exchanged at a real STS (SeaweedFS's
/// gateway started with `-s3.iam.config`) for temporary credentials.
@Suite(.serialized) struct WebIdentityPublishTests {
  let sample = checkout + "/registry-index/source"

  struct World {
    let w: CLIWorld
    let sts: STSTestServer
    let bucket: String
    var url: String { "s3://\(bucket)/reg?endpoint=\(sts.endpoint)&region=us-east-1" }
    var admin: S3Store { sts.store(bucket: bucket, prefix: "reg", credentials: S3TestServer.admin) }

    /// The environment of a CI job holding `token` for `role`, and nothing else.
    func oidc(_ token: String, role: String = STSTestServer.publisherRole, name: String = "token")
      throws -> [String: String]
    {
      let file = w.dir.file(name + ".jwt")
      try token.write(toFile: file, atomically: true, encoding: .utf8)
      return [
        "AWS_WEB_IDENTITY_TOKEN_FILE": file, "AWS_ROLE_ARN": role, "AWS_ROLE_SESSION_NAME": "publish-main",
        "TSUKU_API_TIMEOUT": "60",
      ]
    }

    func publisher() throws -> [String: String] {
      try oidc(try sts.issuer.token(subject: STSTestServer.publisherSubject))
    }

    func publish(_ recipes: String, env: [String: String]) throws -> CommandResult {
      try w.run(
        "registry", "publish", "--recipes", recipes, "--critical", checkout + "/registry-index/source/embedded",
        "--golden", checkout + "/registry-index/source/golden", "--key", w.k("index"), "--to", url, env: env)
    }

    /// The sample's recipes with `fzf` ending in the comment `# tag`: another index version.
    func changedRecipes(_ tag: String = "changed") throws -> String {
      let changed = w.dir.file(tag)
      if !FileManager.default.fileExists(atPath: changed) {
        try FileManager.default.copyItem(atPath: checkout + "/registry-index/source/recipes", toPath: changed)
        let fzf = changed + "/f/fzf.toml"
        try (String(contentsOfFile: fzf, encoding: .utf8) + "\n# \(tag)\n").write(
          toFile: fzf, atomically: true, encoding: .utf8)
      }
      return changed
    }

    /// A client of the bucket (anonymous reads) that trusts the root the maintainer wrote.
    func initClient() throws {
      let root = try #require(try admin.readDocument(.root(1), maxSize: 1 << 20))
      try root.write(to: URL(fileURLWithPath: w.dir.file("root.json")))
      let r = try w.run("init", "--root", w.dir.file("root.json"), "--source", url)
      #expect(r.status == 0, "\(r.stderr)")
    }
  }

  /// A bucket with the sample published by the publisher role, through web identity only.
  func world() throws -> World {
    let sts: STSTestServer
    do { sts = try STSTestServer.require() } catch let e as S3TestServer.S3Unavailable { try Test.cancel("\(e)") }
    let w = try CLIWorld()
    let world = World(w: w, sts: sts, bucket: try sts.makeBucket(prefix: "oidc"))
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] {
      #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0)
    }
    let env = try world.publisher()
    var r = try w.run(
      "registry", "init", "--to", world.url, "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub",
      "--revocation-key", w.k("revocation") + ".pub", "--sign", w.k("root"), env: env)
    #expect(r.status == 0, "\(r.stderr)")
    r = try world.publish(sample + "/recipes", env: env)
    #expect(r.status == 0, "\(r.stderr)")
    return world
  }

  @Test func webIdentityTokenForTheWriterRolePublishesAndAClientVerifiesIt() throws {
    let b = try world()
    let env = try b.publisher()
    let token = try String(contentsOfFile: env["AWS_WEB_IDENTITY_TOKEN_FILE"]!, encoding: .utf8)
    let r = try b.publish(try b.changedRecipes(), env: env)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(!r.stderr.contains(token) && !r.out.contains(token))
    try b.initClient()
    var c = try b.w.run("update-registry")
    #expect(c.status == 0, "\(c.stderr)")
    c = try b.w.run("verify", "--offline")
    #expect(c.status == 0, "\(c.out) \(c.stderr)")
    c = try b.w.run("show", "fzf", "--offline")
    #expect(c.out.hasSuffix("\n# changed\n"))
    // The new version records who published it (the token's subject, the role), signed.
    c = try b.w.run("registry", "log", "--from", b.url, "--root", b.w.dir.file("root.json"), "--json")
    let log = try #require(try JSONSerialization.jsonObject(with: c.stdout) as? [String: Any], "\(c.stderr)")
    let newest = try #require((log["versions"] as? [[String: Any]])?.first)
    let identity = try #require(newest["identity"] as? String)
    #expect(identity.contains("sub \(STSTestServer.publisherSubject)"), "\(identity)")
    #expect(identity.contains("role \(STSTestServer.publisherRole)"), "\(identity)")
  }

  @Test func readOnlyRoleTokenIsRefusedWithExitOneAndNothingIsWritten() throws {
    let b = try world()
    let before = try b.admin.inventory(.live, dated: false)
    let index = try b.admin.readDocument(.index, maxSize: 1 << 20)
    let env = try b.oidc(
      try b.sts.issuer.token(subject: STSTestServer.pullRequestSubject), role: STSTestServer.readerRole)
    let r = try b.publish(try b.changedRecipes(), env: env)
    #expect(r.status == 1)
    #expect(
      lastLine(r)
        == "error: 's3://\(b.bucket)/reg' refused the write: AccessDenied (role '\(STSTestServer.readerRole)' is read-only?)",
      "\(r.stderr)")
    #expect(try b.admin.inventory(.live, dated: false) == before)
    #expect(try b.admin.readDocument(.index, maxSize: 1 << 20) == index)
  }

  @Test func expiredWronglySignedOrUntrustedTokensAreRefusedAndNothingIsWritten() throws {
    let b = try world()
    let before = try b.admin.inventory(.live, dated: false)
    let index = try b.admin.readDocument(.index, maxSize: 1 << 20)
    let issuer = b.sts.issuer
    let subject = STSTestServer.publisherSubject
    for (what, token, said) in [
      ("expired", try issuer.token(subject: subject, lifetime: -120), "ExpiredToken"),
      ("wrongly signed", try issuer.token(subject: subject, signer: try RSAKey()), "signature is invalid"),
      ("a pull request's", try issuer.token(subject: STSTestServer.pullRequestSubject), "AccessDenied"),
    ] {
      let env = try b.oidc(token)
      let r = try b.publish(try b.changedRecipes(), env: env)
      #expect(r.status == 1, "\(what): \(r.stderr)")
      let line =
        "error: STS at '\(b.sts.endpoint)' refused the web identity token in '\(env["AWS_WEB_IDENTITY_TOKEN_FILE"]!)' for role '\(STSTestServer.publisherRole)': "
      #expect(lastLine(r).hasPrefix(line), "\(what): \(r.stderr)")
      #expect(lastLine(r).contains(said), "\(what): \(r.stderr)")
      #expect(!r.stderr.contains(token))
    }
    // No token file: a usage error; STS unreachable: exit 5.
    var env = try b.publisher()
    env["AWS_WEB_IDENTITY_TOKEN_FILE"] = b.w.dir.file("absent.jwt")
    var r = try b.publish(try b.changedRecipes(), env: env)
    #expect(r.status == 64)
    #expect(lastLine(r) == "error: AWS_WEB_IDENTITY_TOKEN_FILE '\(b.w.dir.file("absent.jwt"))' does not exist")
    env = try b.publisher()
    env["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:\(LoopbackServer.closedPort())"
    env["TSUKU_API_TIMEOUT"] = "5"
    r = try b.publish(try b.changedRecipes(), env: env)
    #expect(r.status == 5, "\(r.stderr)")
    #expect(
      r.stderr.contains(
        "\nerror: cannot get credentials for role '\(STSTestServer.publisherRole)' from STS at '\(env["AWS_ENDPOINT_URL_STS"]!)': connection refused\n"
      ), "\(r.stderr)")
    #expect(try b.admin.inventory(.live, dated: false) == before)
    #expect(try b.admin.readDocument(.index, maxSize: 1 << 20) == index)
  }

  @Test func sessionCredentialsFromAnSTSExchangePublishWithTheirToken() throws {
    let b = try world()
    let c = try b.sts.assume(
      role: STSTestServer.publisherRole, token: try b.sts.issuer.token(subject: STSTestServer.publisherSubject))
    let token = try #require(c.sessionToken)
    let keys = ["AWS_ACCESS_KEY_ID": c.accessKeyID, "AWS_SECRET_ACCESS_KEY": c.secretAccessKey]
    // Without its token the temporary key is unknown to the bucket.
    var r = try b.publish(try b.changedRecipes(), env: keys)
    #expect(r.status == 1)
    #expect(r.stderr.contains("(InvalidAccessKeyId); a temporary key needs its session token"), "\(r.stderr)")
    r = try b.publish(try b.changedRecipes(), env: keys.merging(["AWS_SESSION_TOKEN": token]) { $1 })
    #expect(r.status == 0, "\(r.stderr)")
    #expect(!r.stderr.contains(token) && !r.stderr.contains(c.secretAccessKey))
    try b.initClient()
    #expect(try b.w.run("update-registry").status == 0)
    #expect(try b.w.run("show", "fzf", "--offline").out.hasSuffix("\n# changed\n"))
  }

  @Test func credentialsRenewedDuringAPublishAreCountedAtSTSAndThePublishCompletes() throws {
    let b = try world()
    let proxy = try CountingProxy(upstream: b.sts.endpoint)
    var env = try b.publisher()
    env["AWS_ENDPOINT_URL_STS"] = proxy.endpoint
    // Credentials renewed after every 5 requests, as if each set were about to expire.
    env["TSUKU_TEST_S3_CREDENTIAL_USES"] = "5"
    let r = try b.publish(try b.changedRecipes(), env: env)
    #expect(r.status == 0, "\(r.stderr)")
    let exchanges = try proxy.count()
    #expect(exchanges >= 3, "STS was asked \(exchanges) times")
    try b.initClient()
    #expect(try b.w.run("update-registry").status == 0)
    #expect(try b.w.run("verify", "--offline").status == 0)
    #expect(try b.w.run("show", "fzf", "--offline").out.hasSuffix("\n# changed\n"))
  }

  @Test func renewalFailingMidPublishStopsBeforeTheIndexAndARerunConverges() throws {
    let b = try world()
    try b.initClient()
    let proxy = try CountingProxy(upstream: b.sts.endpoint)
    var env = try b.publisher()
    env["AWS_ENDPOINT_URL_STS"] = proxy.endpoint
    env["TSUKU_API_TIMEOUT"] = "10"
    // Credentials renewed before every request: STS is asked once per request, so its count
    // says how far a publish got.
    env["TSUKU_TEST_S3_CREDENTIAL_USES"] = "1"
    var r = try b.publish(try b.changedRecipes("second"), env: env)
    #expect(r.status == 0, "\(r.stderr)")
    try proxy.reset()
    r = try b.publish(try b.changedRecipes("third"), env: env)
    #expect(r.status == 0, "\(r.stderr)")
    let requests = try proxy.count()
    #expect(try b.w.run("update-registry").status == 0)
    let index = try b.admin.readDocument(.index, maxSize: 1 << 20)
    let before = try b.admin.inventory(.live, dated: false)

    // A publish of the same shape, with STS gone four requests before the end: after the
    // blobs, before index.json (written, then read back, last).
    try proxy.reset()
    try proxy.failAfter(requests - 4)
    r = try b.publish(try b.changedRecipes("fourth"), env: env)
    #expect(r.status == 5, "\(r.stderr)")
    #expect(
      r.stderr.contains(
        "\nerror: cannot get credentials for role '\(STSTestServer.publisherRole)' from STS at '\(proxy.endpoint)': the server closed the connection without answering"
      ), "\(r.stderr)")
    #expect(try b.admin.inventory(.live, dated: false).count > before.count, "no blob went up: it stopped too early")
    #expect(try b.admin.readDocument(.index, maxSize: 1 << 20) == index)
    // Every reader still sees the third version, whole.
    r = try b.w.run("update-registry", "--force")
    #expect(r.status == 0 && r.out.hasPrefix("registry up to date"), "\(r.out) \(r.stderr)")
    #expect(try b.w.run("verify", "--offline").status == 0)
    #expect(try b.w.run("show", "fzf", "--offline").out.hasSuffix("\n# third\n"))
    // STS back: the same publish, run again, completes.
    try proxy.reset()
    r = try b.publish(try b.changedRecipes("fourth"), env: env)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try b.w.run("update-registry").status == 0)
    #expect(try b.w.run("verify", "--offline").status == 0)
    #expect(try b.w.run("show", "fzf", "--offline").out.hasSuffix("\n# fourth\n"))
  }
}

/// The last line of what a command printed on stderr (its error, after any progress lines).
/// The error line of a failed run (a multi-store write lists each store's state after it).
private func lastLine(_ r: CommandResult) -> String {
  String(r.stderr.split(separator: "\n").last { $0.hasPrefix("error: ") } ?? r.stderr.split(separator: "\n").last ?? "")
}
