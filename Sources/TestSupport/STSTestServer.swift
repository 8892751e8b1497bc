import Foundation
import Store
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A SeaweedFS whose S3 gateway is also an STS: started by `tools/s3-server --iam` with an IAM
/// configuration that trusts a loopback `OIDCIssuer` (its JWKS over HTTP) for two roles, so
/// tests exchange tokens they mint for temporary credentials with `AssumeRoleWithWebIdentity`,
/// as a CI job does at AWS. Started once per test process, stopped when it exits.
///
/// - `publisherRole` trusts only tokens for `publisherSubject` (the main branch's publish job)
///   with the issuer's audience, and may read and write every bucket.
/// - `readerRole` trusts any token from the issuer and may only read and list.
/// - The static `S3TestServer.admin` key works too (to make buckets and check what is in them).
public struct STSTestServer: Sendable {
  public let endpoint: String
  public let issuer: OIDCIssuer

  public static let publisherRole = "arn:aws:iam::role/TsukuPublisher"
  public static let readerRole = "arn:aws:iam::role/TsukuReader"
  /// The subject of a CI job on the main branch: the only one the publisher role trusts.
  public static let publisherSubject = "repo:tsuku/recipes:ref:refs/heads/main"
  /// The subject of a pull request's job.
  public static let pullRequestSubject = "repo:tsuku/recipes:pull_request"

  /// Started at most once per process; nil when SeaweedFS cannot be installed.
  public static let shared: Result<STSTestServer?, TsukuError> = {
    do { return .success(try start()) } catch let e as TsukuError { return .failure(e) } catch {
      return .failure(TsukuError(.other, "cannot start SeaweedFS with STS: \(error)"))
    }
  }()

  /// The server, or a skipped test when SeaweedFS cannot be installed.
  public static func require() throws -> STSTestServer {
    guard let server = try shared.get() else { throw S3TestServer.S3Unavailable() }
    return server
  }

  /// A fresh, empty bucket (made with the admin key).
  public func makeBucket(prefix: String = "sts") throws -> String {
    let name = "\(prefix)-" + String(UInt64.random(in: 0...UInt64.max), radix: 16).lowercased()
    try store(bucket: name, credentials: S3TestServer.admin).createBucket()
    return name
  }

  public func store(bucket: String, prefix: String = "", credentials: (any S3CredentialSource)?) -> S3Store {
    S3Store(
      S3Location(bucket: bucket, prefix: prefix, endpoint: endpoint, region: "us-east-1"), credentials: credentials,
      transport: CurlTransport())
  }

  /// One `AssumeRoleWithWebIdentity` made directly: the temporary credentials for `role`.
  public func assume(role: String, token: String) throws -> S3Credentials {
    let dir = try TemporaryDirectory(prefix: "tsuku-sts-token")
    let file = dir.file("token")
    try token.write(toFile: file, atomically: true, encoding: .utf8)
    let source = WebIdentityCredentials(
      roleARN: role, tokenFile: file, sessionName: "tsuku-test", endpoint: endpoint, transport: CurlTransport())
    return try source.current()
  }

  /// The IAM configuration SeaweedFS reads (`-s3.iam.config`).
  static func iamConfig(issuer: OIDCIssuer) throws -> Data {
    func role(_ arn: String, _ policy: String, subject: String?) -> [String: Any] {
      var condition: [String: Any] = ["oidc:aud": OIDCIssuer.audience]
      if let subject { condition["oidc:sub"] = subject }
      return [
        "roleName": String(arn.split(separator: "/").last!), "roleArn": arn,
        "trustPolicy": [
          "Version": "2012-10-17",
          "Statement": [
            [
              "Effect": "Allow", "Principal": ["Federated": "ci"], "Action": ["sts:AssumeRoleWithWebIdentity"],
              "Condition": ["StringEquals": condition],
            ]
          ],
        ],
        "attachedPolicies": [policy],
      ]
    }
    func policy(_ name: String, _ actions: [String]) -> [String: Any] {
      [
        "name": name,
        "document": [
          "Version": "2012-10-17",
          "Statement": [
            ["Effect": "Allow", "Action": actions, "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"]],
            ["Effect": "Allow", "Action": "sts:ValidateSession", "Resource": "*"],
          ],
        ],
      ]
    }
    let config: [String: Any] = [
      "sts": [
        "tokenDuration": "1h", "maxSessionLength": "12h", "issuer": "seaweedfs-sts",
        // A test-only STS signing key (32 bytes, base64), never used for anything real.
        "signingKey": Data("tsuku-test-sts-signing-key-32-by".utf8).base64EncodedString(),
        "providers": [
          [
            "name": "ci", "type": "oidc", "enabled": true,
            "config": ["issuer": issuer.url, "clientId": OIDCIssuer.audience, "jwksUri": issuer.jwksURL],
          ]
        ],
      ],
      "policy": ["defaultEffect": "Deny", "storeType": "memory"],
      "roles": [
        role(publisherRole, "ReadWrite", subject: publisherSubject), role(readerRole, "ReadOnly", subject: nil),
      ],
      "policies": [policy("ReadWrite", ["s3:*"]), policy("ReadOnly", ["s3:GetObject", "s3:ListBucket"])],
    ]
    return try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
  }

  private static func start() throws -> STSTestServer? {
    let issuer = try OIDCIssuer()
    let script = S3TestServer.checkoutRoot() + "/tools/s3-server"
    let dir = try TemporaryDirectory(prefix: "tsuku-sts")
    let path = dir.path
    let iam = path + "/iam.json"
    try iamConfig(issuer: issuer).write(to: URL(fileURLWithPath: iam))
    var lastError = ""
    for _ in 0..<8 {
      let port = Int.random(in: 20000...40000)
      if !LoopbackServer.portsFree(port...port + 9) { continue }
      let (status, out, err) = try S3TestServer.run(
        script, ["start", path, String(port), "--watch", String(getpid()), "--iam", iam], in: path)
      if status == 3 { return nil }
      if status == 0, let line = out.split(separator: "\n").first(where: { $0.hasPrefix("TSUKU_TEST_S3_ENDPOINT=") }) {
        kept.withLock { $0.append(dir) }
        return STSTestServer(endpoint: String(line.dropFirst("TSUKU_TEST_S3_ENDPOINT=".count)), issuer: issuer)
      }
      lastError = err.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    throw TsukuError(.unavailable, "cannot start SeaweedFS with STS with '\(script)': \(lastError)")
  }

  /// Keeps the server's folder past this scope; the server's watcher removes it.
  private static let kept = Mutex<[TemporaryDirectory]>([])
}
