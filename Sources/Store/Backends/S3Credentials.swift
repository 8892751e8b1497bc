import Foundation

/// Credentials for a bucket: an access key and its secret, and for temporary credentials (AWS
/// STS, R2 temporary credentials, an OIDC exchange) the session token that goes with them.
/// `description` and a mirror (`dump`) show the access key ID, never the secret or the token.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
  CustomReflectable
{
  public var accessKeyID: String
  public var secretAccessKey: String
  /// Sent as `x-amz-security-token` and signed with every request; nil for a long-lived key.
  public var sessionToken: String?
  /// The role these temporary credentials act as, when an exchange gave them: for messages.
  public var role: String?
  public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, role: String? = nil) {
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
    self.sessionToken = sessionToken
    self.role = role
  }
  public var description: String {
    if let role { return "role '\(role)' (temporary access key '\(accessKeyID)')" }
    return sessionToken == nil ? "access key '\(accessKeyID)'" : "temporary access key '\(accessKeyID)'"
  }
  public var debugDescription: String { description }
  public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": accessKeyID]) }

  /// The credentials the environment gives, as `credentialSource` reads them, when they are
  /// fixed keys; nil for none. Web identity settings are not read here (they need a transport).
  public static func fromEnvironment(_ env: [String: String] = ProcessEnvironment.current) throws
    -> S3Credentials?
  {
    for (id, secret, token) in [
      ("TSUKU_S3_ACCESS_KEY_ID", "TSUKU_S3_SECRET_ACCESS_KEY", "TSUKU_S3_SESSION_TOKEN"),
      ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
    ] {
      let k = env[id] ?? ""
      let s = env[secret] ?? ""
      let t = env[token] ?? ""
      if !t.isEmpty && !WebIdentityCredentials.isHeaderSafe(t) {
        throw TsukuError(.usage, "\(token) contains a control character (a line break?)")
      }
      if !k.isEmpty && !s.isEmpty {
        return S3Credentials(accessKeyID: k, secretAccessKey: s, sessionToken: t.isEmpty ? nil : t)
      }
      if !k.isEmpty || !s.isEmpty {
        throw TsukuError(.usage, "\(k.isEmpty ? secret : id) is set but \(k.isEmpty ? id : secret) is not")
      }
      if !t.isEmpty {
        throw TsukuError(.usage, "\(token) is set but \(id) and \(secret) are not (a session token goes with its key)")
      }
    }
    return nil
  }

  /// Where the credentials of a bucket at `location` come from, in the AWS SDKs' order:
  /// - `TSUKU_S3_ACCESS_KEY_ID`/`TSUKU_S3_SECRET_ACCESS_KEY` (with `TSUKU_S3_SESSION_TOKEN` for
  ///   temporary ones), else the `AWS_` trio (`AWS_SESSION_TOKEN`); half a pair, or a token
  ///   without its key, is a usage error;
  /// - else `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`: temporary credentials from STS
  ///   (`WebIdentityCredentials`), asked for over `transport` when first needed;
  /// - else nil: unsigned requests (a public bucket).
  public static func source(
    for location: S3Location, environment env: [String: String] = ProcessEnvironment.current,
    transport: any HTTPTransport
  ) throws -> (any S3CredentialSource)? {
    if let fixed = try fromEnvironment(env) { return fixed }
    return try WebIdentityCredentials.fromEnvironment(env, location: location, transport: transport)
  }
}

/// Where the credentials for a bucket's requests come from: fixed keys, or temporary ones that
/// an exchange gives and renews before they expire. Every request a store builds asks for the
/// current ones, so a long command signs its late requests with renewed credentials.
public protocol S3CredentialSource: Sendable {
  /// Credentials good for the next requests; a source of temporary ones renews them first when
  /// they are about to expire, and throws when it cannot (the command then stops).
  func current() throws -> S3Credentials
}

extension S3Credentials: S3CredentialSource {
  public func current() -> S3Credentials { self }
}
