import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// Where the record of who published a version comes from.
@Suite struct PublishedByTests {
  /// A JWT with these claims (the signature part is not checked here: STS checks it).
  func jwt(_ claims: [String: Any]) throws -> Data {
    func b64url(_ d: Data) -> String {
      d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
    }
    let header = b64url(Data(#"{"alg":"RS256","kid":"k1"}"#.utf8))
    let body = b64url(try JSONSerialization.data(withJSONObject: claims))
    return Data("\(header).\(body).c2ln\n".utf8)
  }

  @Test func identityComesFromTheWebIdentityTokenAndRole() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-pubby")
    let token = dir.file("token")
    try jwt(["iss": "https://token.actions.example", "sub": "repo:tsuku/registry:ref:refs/heads/main", "aud": "sts"])
      .write(to: URL(fileURLWithPath: token))
    let p = PublishedBy.current(environment: [
      "AWS_WEB_IDENTITY_TOKEN_FILE": token, "AWS_ROLE_ARN": "arn:aws:iam::123:role/publish",
      "AWS_ROLE_SESSION_NAME": "run-42", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "tsuku/registry",
    ])
    #expect(
      p.identity
        == "oidc https://token.actions.example sub repo:tsuku/registry:ref:refs/heads/main; role arn:aws:iam::123:role/publish session run-42")
    #expect(p.tool == "tsuku \(PublishedBy.toolVersion)")
  }

  @Test func explicitPublisherWinsAndIsOneLine() {
    let p = PublishedBy.current(environment: ["TSUKU_PUBLISHER": "alice\nrelease 3\u{7}", "GITHUB_ACTIONS": "true"])
    #expect(p.identity == "alice release 3")
    let long = PublishedBy.current(environment: ["TSUKU_PUBLISHER": String(repeating: "x", count: 5000)])
    #expect(long.identity?.count == PublishedBy.maxIdentity)
  }

  @Test func aGitHubRunWithoutWebIdentityIsNamedAndALaptopIsNot() {
    let gh = PublishedBy.current(environment: [
      "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "tsuku/registry",
      "GITHUB_WORKFLOW_REF": "tsuku/registry/.github/workflows/publish.yml@refs/heads/main", "GITHUB_RUN_ID": "77",
    ])
    #expect(gh.identity == "github-actions tsuku/registry workflow tsuku/registry/.github/workflows/publish.yml@refs/heads/main run 77")
    #expect(PublishedBy.current(environment: ["USER": "alice", "HOSTNAME": "laptop"]).identity == nil)
  }

  @Test func aTokenThatIsNotAJWTRecordsNoClaims() throws {
    let dir = try TemporaryDirectory(prefix: "tsuku-pubby")
    try Data("not a token".utf8).write(to: URL(fileURLWithPath: dir.file("t")))
    #expect(PublishedBy.current(environment: ["AWS_WEB_IDENTITY_TOKEN_FILE": dir.file("t")]).identity == nil)
    #expect(PublishedBy.jwtClaims(Data("a.!!!.c".utf8)) == nil)
  }
}
