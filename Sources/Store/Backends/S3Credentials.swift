import Foundation

/// Credentials for a bucket. `description` and a mirror (`dump`) show the access key ID, never
/// the secret.
public struct S3Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
  public var accessKeyID: String
  public var secretAccessKey: String
  public init(accessKeyID: String, secretAccessKey: String) {
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
  }
  public var description: String { "access key '\(accessKeyID)'" }
  public var debugDescription: String { description }
  public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": accessKeyID]) }

  /// `TSUKU_S3_ACCESS_KEY_ID`/`TSUKU_S3_SECRET_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID`/
  /// `AWS_SECRET_ACCESS_KEY`; nil when neither pair is set (anonymous reads). Half a pair is a
  /// usage error.
  public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws
    -> S3Credentials?
  {
    for (id, secret) in [
      ("TSUKU_S3_ACCESS_KEY_ID", "TSUKU_S3_SECRET_ACCESS_KEY"), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ] {
      let k = env[id] ?? ""
      let s = env[secret] ?? ""
      if !k.isEmpty && !s.isEmpty { return S3Credentials(accessKeyID: k, secretAccessKey: s) }
      if !k.isEmpty || !s.isEmpty {
        throw TsukuError(.usage, "\(k.isEmpty ? secret : id) is set but \(k.isEmpty ? id : secret) is not")
      }
    }
    return nil
  }
}
