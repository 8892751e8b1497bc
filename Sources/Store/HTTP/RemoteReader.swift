import Foundation

/// Reading the store layout over HTTP, shared by `S3Store` (signed) and `HTTPStore`
/// (anonymous): builds the requests, runs them through the transport, and turns answers into
/// bytes or one-line errors. Verifying blobs against their names is the store's job.
struct RemoteReader: Sendable {
  /// The store's URL, for messages.
  let location: String
  let transport: any HTTPTransport
  /// Where a bucket's credentials come from, and the region they sign for; nil for anonymous
  /// reads.
  let signer: RequestSigner?
  /// The URL of a path of the layout (`index.json`, `objects/sha256/ab/...`).
  let urlFor: @Sendable (String) -> String

  /// A request for a layout path. Signed requests carry `x-amz-content-sha256`, which
  /// libcurl 7.88 does not add by itself. Each request is signed with the credentials current
  /// when it is made: temporary ones are renewed first when they are about to expire, and a
  /// renewal that fails is thrown (before anything is sent).
  func request(
    _ method: String, _ path: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
    maxSize: Int = 1 << 20
  ) throws -> HTTPRequest {
    try request(method, url: urlFor(path), headers: headers, body: body, maxSize: maxSize)
  }

  func request(
    _ method: String, url: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
    maxSize: Int = 1 << 20
  ) throws -> HTTPRequest {
    var h = headers
    let signing = try signer?.signing()
    if signing != nil {
      h.append(("x-amz-content-sha256", body.map { SHA256.hash($0).hex } ?? S3Protocol.emptyPayloadHash))
    }
    return HTTPRequest(method, url, headers: h, body: body, maxResponseSize: maxSize, signing: signing)
  }

  /// The bytes at `path`, or nil when the server says there are none.
  func fetch(_ path: String, maxSize: Int) throws -> Data? {
    try fetchMany([(path, maxSize)])[0]
  }

  /// Many paths in one batch (in parallel, up to the transport's limit); nil for absent ones.
  /// The first failure in request order is thrown.
  func fetchMany(_ wanted: [(String, Int)]) throws -> [Data?] {
    let requests = try wanted.map { try request("GET", $0.0, maxSize: $0.1) }
    return try zip(requests, transport.perform(requests)).map { req, result in
      let r = try result.get()
      if r.isSuccess { return r.body }
      if isAbsent(r) { return nil }
      throw failure(r, req)
    }
  }

  /// Many paths in one batch, each success body handed to its sink as it arrives (nothing held
  /// in memory); false for absent ones. A sink's refusal is thrown as the sink gave it.
  func fetchInto(_ wanted: [(path: String, maxSize: Int, sink: any BodySink)]) throws -> [Bool] {
    let requests = try wanted.map { w -> HTTPRequest in
      var r = try request("GET", w.path, maxSize: w.maxSize)
      r.sink = w.sink
      return r
    }
    return try zip(requests, transport.perform(requests)).map { req, result in
      if case .failure = result, let why = req.sink?.refusal { throw why }
      let r = try result.get()
      if r.isSuccess { return true }
      if isAbsent(r) { return false }
      throw failure(r, req)
    }
  }

  /// Whether a HEAD finds `path`, and its size.
  func size(of paths: [String]) throws -> [Int?] {
    let requests = try paths.map { try request("HEAD", $0) }
    return try zip(requests, transport.perform(requests)).map { req, result in
      let r = try result.get()
      if r.isSuccess { return r.header("content-length").flatMap { Int($0) } ?? 0 }
      if isAbsent(r) { return nil }
      throw diagnosed(r, req)
    }
  }

  /// A HEAD answer has no body, so no S3 error code: a GET of the same path tells why
  /// (a wrong secret, a read-only key) before the error is reported.
  private func diagnosed(_ r: HTTPResponse, _ head: HTTPRequest) -> TsukuError {
    guard let get = try? request("GET", url: head.url, maxSize: 1 << 16) else { return failure(r, head) }
    if let answer = try? transport.perform(get), S3Protocol.errorCode(answer) != nil {
      return failure(answer, get)
    }
    return failure(r, head)
  }

  /// A document, fetched with `If-None-Match` when an ETag is given.
  func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    let req = try request("GET", name.path, headers: etag.map { [("If-None-Match", $0)] } ?? [], maxSize: maxSize)
    let r = try transport.perform(req)
    if r.status == 304 && etag != nil { return .notModified }
    if r.isSuccess { return .found(r.body, etag: r.etag) }
    if isAbsent(r) { return .absent }
    throw failure(r, req)
  }

  /// A 404 or 410 for a key, as opposed to a missing bucket (which is an error).
  func isAbsent(_ r: HTTPResponse) -> Bool {
    (r.status == 404 || r.status == 410) && S3Protocol.errorCode(r) != "NoSuchBucket"
  }

  /// The error for an answer that is neither a success nor an absence.
  func failure(_ r: HTTPResponse, _ req: HTTPRequest, writing: Bool = false) -> TsukuError {
    let code = S3Protocol.errorCode(r)
    let signing = req.signing
    let key = signing?.accessKeyID ?? ""
    switch (r.status, code) {
    case (_, "NoSuchBucket"?):
      return TsukuError(.unavailable, "'\(location)': the bucket does not exist")
    case (404, _), (410, _):
      return TsukuError(.notFound, "\(req): not found")
    case (_, "SignatureDoesNotMatch"?):
      return TsukuError(
        .other, "'\(location)': the secret key for access key '\(key)' is wrong (SignatureDoesNotMatch)")
    case (_, "InvalidAccessKeyId"?):
      // A temporary key (`ASIA…`) sent without its token is unknown to the server too.
      let hint =
        signing?.sessionToken == nil && key.hasPrefix("ASIA")
        ? "; a temporary key needs its session token in TSUKU_S3_SESSION_TOKEN or AWS_SESSION_TOKEN" : ""
      return TsukuError(
        .other, "'\(location)': the server does not know access key '\(key)' (InvalidAccessKeyId)\(hint)")
    case (_, "ExpiredToken"?), (_, "TokenRefreshRequired"?):
      return TsukuError(
        .other,
        "'\(location)': the session token of temporary access key '\(key)' has expired (\(code!)); get new credentials and run it again"
      )
    case (_, "InvalidToken"?):
      return TsukuError(
        .other, "'\(location)': the server refused the session token of access key '\(key)' (InvalidToken)")
    case (_, "RequestTimeTooSkewed"?):
      return TsukuError(
        .other, "'\(location)': this machine's clock is too far off for a signature (RequestTimeTooSkewed)")
    case (_, "BadDigest"?), (_, "XAmzContentSHA256Mismatch"?), (_, "IncompleteBody"?):
      return TsukuError(.integrity, "\(req): the bucket received other bytes than were sent (\(code!))")
    case (401, _), (403, _):
      let said = code ?? "\(r.status)"
      let hint: String
      if signing == nil {
        hint =
          writing
          ? "no credentials: set TSUKU_S3_ACCESS_KEY_ID and TSUKU_S3_SECRET_ACCESS_KEY,"
            + " or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN"
          : "not public: to read with credentials set TSUKU_S3_ACCESS_KEY_ID and TSUKU_S3_SECRET_ACCESS_KEY,"
            + " or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN"
      } else if let role = signing?.role {
        hint = writing ? "role '\(role)' is read-only?" : "role '\(role)' cannot read it?"
      } else {
        hint = writing ? "the credentials are read-only?" : "the credentials cannot read it?"
      }
      if writing { return TsukuError(.other, "'\(location)' refused the write: \(said) (\(hint))") }
      return TsukuError(.other, "'\(location)' said \(said) (\(hint))")
    case (412, _):
      return TsukuError(.conflict, "\(req): a precondition failed (\(code ?? "412"))")
    default:
      let detail = code.map { " (\($0))" } ?? ""
      let what: TsukuError.Code = RetryPolicy.isRetryable(status: r.status) ? .unavailable : .other
      return TsukuError(what, "\(req): the server answered \(r.status)\(detail)")
    }
  }
}

/// The SigV4 signing of a bucket's requests: its region, and the source asked for the current
/// credentials each time a request is made.
struct RequestSigner: Sendable {
  let region: String
  let source: any S3CredentialSource

  func signing() throws -> AWSSigning {
    let c = try source.current()
    return AWSSigning(
      region: region, accessKeyID: c.accessKeyID, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken,
      role: c.role)
  }
}
