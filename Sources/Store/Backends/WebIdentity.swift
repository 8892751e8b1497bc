import Foundation
import Synchronization

/// Temporary bucket credentials for a role, obtained by exchanging a web identity token (a CI
/// job's OIDC token) at STS with `AssumeRoleWithWebIdentity`, as the AWS SDKs and GitHub's OIDC
/// actions do: no long-lived bucket secret is stored anywhere.
///
/// - The first request asks STS; later requests reuse the credentials until they come within
///   `refreshMargin` of their `Expiration` (or half their lifetime, if that is shorter), then the
///   token file is read again (a CI rotates it) and STS asked again, so a long command never
///   signs with credentials about to run out. A renewal that fails stops the command: the
///   request that needed it is not sent, so a publish stops before `index.json` is written.
/// - The exchange is one POST over the store's transport: bounded by its deadline, retried on
///   connection trouble and 5xx. Its answer is read up to 64 KiB.
/// - Errors are one line naming what was wrong: the token file, STS's refusal (its code and
///   message: an expired or wrongly signed token, a role that does not trust it) with exit 1,
///   STS unreachable with exit 5. Neither the token nor the credentials are ever in a message.
public final class WebIdentityCredentials: S3CredentialSource {
  /// The role to assume (`AWS_ROLE_ARN`).
  public let roleARN: String
  /// The file holding the identity token (`AWS_WEB_IDENTITY_TOKEN_FILE`), read at each exchange.
  public let tokenFile: String
  /// `AWS_ROLE_SESSION_NAME`, else `tsuku-PID`.
  public let sessionName: String
  /// The STS endpoint (`AWS_ENDPOINT_URL_STS`, else the bucket's endpoint, else AWS's).
  public let endpoint: String
  /// Renew when the credentials expire within this many seconds.
  public let refreshMargin: Double
  /// Test hook: renew after this many uses, as if the credentials were about to expire.
  let renewAfterUses: Int?
  private let transport: any HTTPTransport
  private let clock: @Sendable () -> Date
  private let state = Mutex(State())

  private struct State {
    var credentials: S3Credentials?
    var renewAt = Date.distantPast
    var uses = 0
    var exchanges = 0
    var subject: String?
  }

  /// Renew credentials this close to their expiry (AWS SDKs use 5 minutes too).
  public static let defaultRefreshMargin: Double = 300
  /// The most of an STS answer read.
  static let maxAnswer = 64 << 10
  /// The most of a token file read: an OIDC token is a few KiB.
  static let maxToken = 64 << 10

  public convenience init(
    roleARN: String, tokenFile: String, sessionName: String, endpoint: String, transport: any HTTPTransport,
    refreshMargin: Double = WebIdentityCredentials.defaultRefreshMargin,
    clock: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.init(
      roleARN: roleARN, tokenFile: tokenFile, sessionName: sessionName, endpoint: endpoint, transport: transport,
      refreshMargin: refreshMargin, renewAfterUses: nil, clock: clock)
  }

  init(
    roleARN: String, tokenFile: String, sessionName: String, endpoint: String, transport: any HTTPTransport,
    refreshMargin: Double, renewAfterUses: Int?, clock: @escaping @Sendable () -> Date
  ) {
    self.roleARN = roleARN
    self.tokenFile = tokenFile
    self.sessionName = sessionName
    var ep = endpoint
    while ep.hasSuffix("/") { ep.removeLast() }
    self.endpoint = ep
    self.transport = transport
    self.refreshMargin = refreshMargin
    self.renewAfterUses = renewAfterUses
    self.clock = clock
  }

  /// `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (and `AWS_ROLE_SESSION_NAME`,
  /// `AWS_ENDPOINT_URL_STS`), for a bucket at `location`; nil when no token file is named.
  /// A token file without a role, an invalid session name or STS URL is a usage error.
  public static func fromEnvironment(
    _ env: [String: String], location: S3Location, transport: any HTTPTransport
  ) throws -> WebIdentityCredentials? {
    guard let file = env["AWS_WEB_IDENTITY_TOKEN_FILE"], !file.isEmpty else { return nil }
    guard let role = env["AWS_ROLE_ARN"], !role.isEmpty else {
      throw TsukuError(.usage, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not (the role to assume)")
    }
    let name = env["AWS_ROLE_SESSION_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "tsuku-\(getpid())"
    let allowed = CharacterSet(charactersIn: "+=,.@-_").union(
      CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    guard (2...64).contains(name.count), name.unicodeScalars.allSatisfy(allowed.contains) else {
      throw TsukuError(
        .usage, "invalid AWS_ROLE_SESSION_NAME '\(name.prefix(80))': expected 2-64 of A-Z a-z 0-9 and +=,.@-_")
    }
    let endpoint: String
    if let given = env["AWS_ENDPOINT_URL_STS"], !given.isEmpty {
      let lower = given.lowercased()
      guard lower.hasPrefix("https://") || lower.hasPrefix("http://"), URL(string: given)?.host != nil else {
        throw TsukuError(.usage, "invalid AWS_ENDPOINT_URL_STS '\(given)': expected https://HOST[:PORT]")
      }
      endpoint = given
    } else if let bucketEndpoint = location.endpoint {
      // SeaweedFS and MinIO answer STS on their S3 port.
      endpoint = bucketEndpoint
    } else {
      endpoint =
        location.region == "auto" ? "https://sts.amazonaws.com" : "https://sts.\(location.region).amazonaws.com"
    }
    var uses: Int?
    if let t = env["TSUKU_TEST_S3_CREDENTIAL_USES"], !t.isEmpty {
      guard let n = Int(t), n > 0 else { throw TsukuError(.usage, "invalid TSUKU_TEST_S3_CREDENTIAL_USES '\(t)'") }
      uses = n
    }
    return WebIdentityCredentials(
      roleARN: role, tokenFile: file, sessionName: name, endpoint: endpoint, transport: transport,
      refreshMargin: defaultRefreshMargin, renewAfterUses: uses, clock: { Date() })
  }

  /// How many times STS was asked so far.
  public var exchanges: Int { state.withLock { $0.exchanges } }

  /// The subject of the last token STS accepted (`SubjectFromWebIdentityToken`: a CI job's
  /// repository and ref), once credentials were obtained.
  public var subject: String? { state.withLock { $0.subject } }

  public func current() throws -> S3Credentials {
    try state.withLock { s in
      s.uses += 1
      let worn = renewAfterUses.map { s.uses > $0 } ?? false
      if let c = s.credentials, clock() < s.renewAt, !worn { return c }
      let (c, expiration, subject) = try exchange()
      let now = clock()
      // At least a minute: a clock far off from STS's must not make every request renew.
      let lifetime = max(60, expiration.timeIntervalSince(now))
      s.credentials = c
      s.renewAt = now.addingTimeInterval(lifetime - min(refreshMargin, lifetime / 2))
      s.uses = 1
      s.exchanges += 1
      s.subject = subject
      return c
    }
  }

  /// What STS is told and answers, for messages.
  private var what: String { "role '\(roleARN)' from STS at '\(endpoint)'" }

  /// One `AssumeRoleWithWebIdentity`: the credentials, their expiry and the token's subject.
  private func exchange() throws -> (S3Credentials, Date, String?) {
    let token = try readToken()
    let form = [
      ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
      ("RoleSessionName", sessionName), ("WebIdentityToken", token),
    ].map { S3Protocol.encode($0.0) + "=" + S3Protocol.encode($0.1) }.joined(separator: "&")
    let request = HTTPRequest(
      "POST", endpoint + "/",
      headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/xml")],
      body: Data(form.utf8), maxResponseSize: Self.maxAnswer)
    let answer: HTTPResponse
    do {
      answer = try transport.perform(request)
    } catch let e as TsukuError {
      // The transport names the request; the message names STS already.
      let prefix = "\(request): "
      let why = e.message.hasPrefix(prefix) ? String(e.message.dropFirst(prefix.count)) : e.message
      throw TsukuError(
        e.code == .integrity ? .other : .unavailable, "cannot get credentials for \(what): \(why)", details: e.details)
    }
    let xml = String(decoding: answer.body, as: UTF8.self)
    guard answer.isSuccess else { throw refusal(answer, xml) }
    guard let key = S3Protocol.value("AccessKeyId", in: xml), let secret = S3Protocol.value("SecretAccessKey", in: xml),
      let session = S3Protocol.value("SessionToken", in: xml), !key.isEmpty, !secret.isEmpty, !session.isEmpty,
      [key, secret, session].allSatisfy(Self.isHeaderSafe)
    else {
      throw TsukuError(.other, "cannot get credentials for \(what): its answer has no usable credentials")
    }
    guard let text = S3Protocol.value("Expiration", in: xml), let expiration = Self.parseExpiration(text) else {
      throw TsukuError(.other, "cannot get credentials for \(what): its answer has no valid Expiration")
    }
    let subject = S3Protocol.value("SubjectFromWebIdentityToken", in: xml).map { Self.oneLine($0, max: 200) }
    return (
      S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: session, role: roleARN), expiration,
      subject
    )
  }

  private func readToken() throws -> String {
    let url = URL(fileURLWithPath: tokenFile)
    let data: Data
    do {
      let handle = try FileHandle(forReadingFrom: url)
      defer { try? handle.close() }
      data = try handle.read(upToCount: Self.maxToken + 1) ?? Data()
    } catch {
      let why =
        FileManager.default.fileExists(atPath: tokenFile) ? "cannot be read" : "does not exist"
      throw TsukuError(.usage, "AWS_WEB_IDENTITY_TOKEN_FILE '\(tokenFile)' \(why)")
    }
    if data.count > Self.maxToken {
      throw TsukuError(.usage, "AWS_WEB_IDENTITY_TOKEN_FILE '\(tokenFile)' is larger than \(Self.maxToken) bytes")
    }
    let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    if token.isEmpty { throw TsukuError(.usage, "AWS_WEB_IDENTITY_TOKEN_FILE '\(tokenFile)' is empty") }
    return token
  }

  /// STS said no: its code and message (an expired or wrongly signed token, a role that does
  /// not trust it) with exit 1; 5xx after the transport's retries with exit 5.
  private func refusal(_ r: HTTPResponse, _ xml: String) -> TsukuError {
    let code = S3Protocol.value("Code", in: xml).map { Self.oneLine($0, max: 80) }
    let message = S3Protocol.value("Message", in: xml).map { Self.oneLine($0, max: 300) }
    let said = [code, message].compactMap { $0 }.joined(separator: ": ")
    let detail = said.isEmpty ? "HTTP \(r.status)" : said
    if RetryPolicy.isRetryable(status: r.status) {
      return TsukuError(.unavailable, "cannot get credentials for \(what): it answered \(r.status) (\(detail))")
    }
    return TsukuError(
      .other, "STS at '\(endpoint)' refused the web identity token in '\(tokenFile)' for role '\(roleARN)': \(detail)")
  }

  /// The STS `Expiration`: ISO 8601 (`2026-12-03T15:05:30Z`), or seconds since 1970 as some
  /// servers send.
  static func parseExpiration(_ text: String) -> Date? {
    let t = text.trimmingCharacters(in: .whitespaces)
    if let d = S3Protocol.parseTime(t) { return d }
    if let n = Double(t), n > 0 { return Date(timeIntervalSince1970: n) }
    return nil
  }

  /// Whether a value can go in a header line: no control characters.
  static func isHeaderSafe(_ s: String) -> Bool { !s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } }

  /// Server text for a one-line message: control characters as spaces, at most `max` characters.
  static func oneLine(_ s: String, max: Int) -> String {
    let flat = String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
      .trimmingCharacters(in: .whitespaces)
    return flat.count > max ? String(flat.prefix(max)) + "…" : flat
  }
}
