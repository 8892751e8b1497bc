import Foundation
import Store

/// The record of who made a signed version, kept inside the signed payload (index and
/// revocation sections), so anyone who verifies the document reads it verified. The keys that
/// signed are the envelope's own verified signatures; this adds who held them and with what.
public struct PublishedBy: Codable, Hashable, Sendable {
  /// The identity the command ran under, when there is one: an OIDC token's issuer and
  /// subject, the role it assumed, or `TSUKU_PUBLISHER`. Never a secret.
  public var identity: String?
  /// The tool that made it, `tsuku 0.1.0`.
  public var tool: String

  public init(identity: String?, tool: String) {
    self.identity = identity
    self.tool = tool
  }

  /// The tool's version, recorded in every document it signs.
  public static let toolVersion = "0.1.0"

  /// The longest identity kept (longer ones are cut).
  static let maxIdentity = 400

  /// Who runs this process, from its environment, in this order:
  /// `TSUKU_PUBLISHER` (set by a workflow or a maintainer; one line);
  /// a web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`): the token's `iss` and `sub` claims, and
  /// `AWS_ROLE_ARN` with `AWS_ROLE_SESSION_NAME` (the token's signature is STS's to check; the
  /// claims are only recorded);
  /// a GitHub Actions run (`GITHUB_ACTIONS`): repository, workflow ref and run id.
  /// Otherwise nil: a laptop's user and host name are not published.
  public static func current(environment env: [String: String] = ProcessEnvironment.current) -> PublishedBy {
    PublishedBy(identity: identity(env), tool: "tsuku \(toolVersion)")
  }

  static func identity(_ env: [String: String]) -> String? {
    func clean(_ s: String) -> String? {
      let one = s.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
      let printable = String(one.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }.map(Character.init))
      return printable.isEmpty ? nil : String(printable.prefix(maxIdentity))
    }
    if let given = env["TSUKU_PUBLISHER"], let s = clean(given) { return s }
    var parts = [String]()
    if let file = env["AWS_WEB_IDENTITY_TOKEN_FILE"], !file.isEmpty,
      let token = (try? FileIO.readFileIfPresent(file)) ?? nil, token.count <= 64 * 1024, let claims = jwtClaims(token)
    {
      let sub = claims["sub"] as? String ?? "?"
      let iss = claims["iss"] as? String ?? "?"
      parts.append("oidc \(iss) sub \(sub)")
    }
    if let role = env["AWS_ROLE_ARN"], !role.isEmpty, !parts.isEmpty || env["AWS_WEB_IDENTITY_TOKEN_FILE"] != nil {
      parts.append("role \(role)" + (env["AWS_ROLE_SESSION_NAME"].map { $0.isEmpty ? "" : " session \($0)" } ?? ""))
    }
    if parts.isEmpty, env["GITHUB_ACTIONS"] == "true", let repo = env["GITHUB_REPOSITORY"] {
      var s = "github-actions \(repo)"
      if let w = env["GITHUB_WORKFLOW_REF"] { s += " workflow \(w)" }
      if let run = env["GITHUB_RUN_ID"] { s += " run \(run)" }
      parts.append(s)
    }
    return parts.isEmpty ? nil : clean(parts.joined(separator: "; "))
  }

  /// The claims of a JWT (its middle part, base64url JSON), unverified; nil if it is not one.
  static func jwtClaims(_ token: Data) -> [String: Any]? {
    let text = String(decoding: token, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3 else { return nil }
    var b64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while b64.count % 4 != 0 { b64 += "=" }
    guard let raw = Data(base64Encoded: b64) else { return nil }
    return (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any]
  }

  /// `identity (tsuku 0.1.0)`, or the tool alone.
  public var line: String { identity.map { "\($0) (\(tool))" } ?? tool }
}
