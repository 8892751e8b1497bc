import Foundation

/// Opens a store from the URL a user configures (`--source`, `TSUKU_SOURCES`, `config.toml`).
///
/// Accepted forms:
/// - `file:///abs/path` (or `file://localhost/abs/path`): a directory store.
/// - a plain path, absolute or relative (`/var/cache/tsuku`, `./mirror`, `mirror`): a directory
///   store; a relative path is made absolute against the current directory. A path whose first
///   component contains `:` looks like a URL scheme: write it as `./name:with:colons`.
/// - `git+file:///path/to/repo[?dir=SUBFOLDER][#REF]`: a git store over a local repository,
///   with the layout in `SUBFOLDER` (default: the repository root; `..` is refused) at `REF`
///   (a branch, a tag or a commit sha; default: HEAD), for example
///   `git+file:///work/repo?dir=registry-index/store#main`.
///
/// - `s3://BUCKET[/PREFIX][?endpoint=URL][&region=REGION][&style=path|virtual]`: an S3-compatible
///   bucket (`S3Store`), with the layout under `PREFIX`. `endpoint` is `http[s]://host[:port]`
///   (Cloudflare R2: `https://ACCOUNT.r2.cloudflarestorage.com`; SeaweedFS or MinIO:
///   `http://127.0.0.1:8333`); without it the bucket is on AWS S3 in `region`, which is then
///   required. `region` defaults to `auto` (what R2 wants). `style` defaults to `path` with an
///   endpoint and `virtual` without. Credentials come from `TSUKU_S3_ACCESS_KEY_ID`/
///   `TSUKU_S3_SECRET_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; without
///   any, requests go unsigned. For example
///   `s3://tsuku-registry/v1?endpoint=https://acct.r2.cloudflarestorage.com&region=auto`.
/// - `https://HOST[:PORT][/PREFIX]` or `http://...`: anonymous reads (`HTTPStore`) of a public
///   bucket, a CDN or a mirror; read-only, no listing. User info, a query or a fragment is refused.
///
/// Paths, `dir`, `REF`, `PREFIX` and `endpoint` are percent-decoded (`%20` for a space, `%23`
/// for `#`, `%3F` for `?`). Remote stores use `TSUKU_API_TIMEOUT` and `TSUKU_CA_BUNDLE` (see
/// `TransportOptions`); anything else is a usage error.
public enum StoreURL {
  /// What a URL names, before anything is opened.
  enum Target: Equatable {
    case directory(path: String)
    case git(repository: String, subdirectory: String?, ref: String?)
    case s3(S3Location)
    case http(baseURL: String)
  }

  /// How a git source reads blobs that have left its tip: from the commits of the last `days`
  /// days of its history, the map of which is cached in `cacheDirectory` (nil: not cached).
  public struct GitHistoryWindow: Sendable {
    public var days: Int
    public var cacheDirectory: String?
    public init(days: Int, cacheDirectory: String?) {
      self.days = days
      self.cacheDirectory = cacheDirectory
    }
  }

  /// Opens the store `url` names for reading (a git repository is opened now; a directory is
  /// not checked; a remote store sends nothing yet). `environment` supplies credentials and
  /// timeouts; a git store also serves blobs from the `history` window, when one is given.
  /// The requests of a remote store share `deadline`, when one is given (a command's network
  /// budget); otherwise each has `TSUKU_API_TIMEOUT`. Every URL form opens, `https://` included.
  public static func openReader(
    _ url: String, environment: [String: String] = ProcessEnvironment.current,
    history: GitHistoryWindow? = nil, deadline: Deadline? = nil
  ) throws -> any ObjectReader {
    if case .http(let base) = try parse(url) {
      return try httpStore(base, environment: environment, deadline: deadline)
    }
    return try open(url, environment: environment, history: history, deadline: deadline)
  }

  /// Opens the store `url` names for writing, listing and retention, as `openReader` does. An
  /// `https://` URL opens reads only: its writers and its listing refuse with `.usage`, when a
  /// command first uses them (the store is read-only; publish to the bucket behind it).
  public static func open(
    _ url: String, environment: [String: String] = ProcessEnvironment.current,
    history: GitHistoryWindow? = nil, deadline: Deadline? = nil
  ) throws -> any ObjectStore {
    switch try parse(url) {
    case .directory(let path): return DirectoryStore(path: path)
    case .git(let repository, let sub, let ref):
      let git = try GitStore(repository: repository, ref: ref, subdirectory: sub)
      if let history { git.enableHistory(days: history.days, cacheDirectory: history.cacheDirectory) }
      return git
    case .s3(let location):
      let transport = try transport(environment, deadline)
      let credentials = try S3Credentials.source(for: location, environment: environment, transport: transport)
      return S3Store(location, credentials: credentials, transport: transport)
    case .http(let base):
      return ReadOnlyHTTPStore(try httpStore(base, environment: environment, deadline: deadline))
    }
  }

  private static func httpStore(_ base: String, environment: [String: String], deadline: Deadline?) throws -> HTTPStore
  {
    HTTPStore(baseURL: base, transport: try transport(environment, deadline))
  }

  private static func transport(_ environment: [String: String], _ deadline: Deadline?) throws -> CurlTransport {
    CurlTransport(options: try TransportOptions.fromEnvironment(environment, deadline: deadline))
  }

  private static let expected =
    "file:///path, a path, git+file:///repo[?dir=SUB][#REF], s3://BUCKET/PREFIX?endpoint=URL or https://HOST/PREFIX"

  static func parse(_ url: String) throws -> Target {
    let lower = url.lowercased()
    if url.isEmpty { throw TsukuError(.usage, "empty store URL: expected \(expected)") }
    if lower.hasPrefix("s3://") { return .s3(try s3Location(url)) }
    if lower.hasPrefix("https://") || lower.hasPrefix("http://") { return .http(baseURL: try httpBase(url)) }
    if lower.hasPrefix("file://") {
      let path = try localPath(String(url.dropFirst(7)), url: url)
      return .directory(path: path)
    }
    if lower.hasPrefix("git+file://") {
      var rest = Substring(url.dropFirst(11))
      var ref: String?
      if let hash = rest.firstIndex(of: "#") {
        ref = try decode(rest[rest.index(after: hash)...], url: url)
        rest = rest[..<hash]
        if ref!.isEmpty { throw TsukuError(.usage, "invalid store URL '\(url)': the ref after '#' is empty") }
      }
      var sub: String?
      if let q = rest.firstIndex(of: "?") {
        sub = try subdirectory(query: rest[rest.index(after: q)...], url: url)
        rest = rest[..<q]
      }
      let repository = try localPath(String(rest), url: url)
      return .git(repository: repository, subdirectory: sub, ref: ref)
    }
    if looksLikeURL(url) {
      throw TsukuError(.usage, "unsupported store URL '\(url)': expected \(expected)")
    }
    return .directory(path: absolutePath(url))
  }

  /// `scheme:` or `scheme://` before any `/`.
  private static func looksLikeURL(_ s: String) -> Bool {
    guard let colon = s.firstIndex(of: ":") else { return false }
    let scheme = s[..<colon]
    return !scheme.isEmpty && !scheme.contains("/")
  }

  /// The path part after `file://` or `git+file://`: empty host or `localhost`, then an
  /// absolute path.
  private static func localPath(_ rest: String, url: String) throws -> String {
    var p = Substring(rest)
    if p.lowercased().hasPrefix("localhost/") { p = p.dropFirst(9) }
    guard p.hasPrefix("/") else {
      throw TsukuError(.usage, "invalid store URL '\(url)': expected an absolute path after '//', as in file:///path")
    }
    let path = try decode(p, url: url)
    if path.contains("\0") { throw TsukuError(.usage, "invalid store URL '\(url)': the path contains a NUL byte") }
    return path
  }

  private static func subdirectory(query: Substring, url: String) throws -> String? {
    var sub: String?
    for pair in query.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard kv.count == 2, kv[0] == "dir" else {
        throw TsukuError(.usage, "invalid store URL '\(url)': unknown parameter '\(kv[0])', only 'dir' is allowed")
      }
      let value = try decode(kv[1], url: url)
      if value.split(separator: "/").contains("..") {
        throw TsukuError(.usage, "invalid store URL '\(url)': dir '\(value)' must not contain '..'")
      }
      if value.hasPrefix("/") {
        throw TsukuError(.usage, "invalid store URL '\(url)': dir '\(value)' must be relative to the repository")
      }
      sub = value
    }
    return sub
  }

  /// `s3://BUCKET/PREFIX?endpoint=...&region=...&style=...`.
  static func s3Location(_ url: String) throws -> S3Location {
    var rest = Substring(url.dropFirst(5))
    var query: Substring = ""
    if let q = rest.firstIndex(of: "?") {
      query = rest[rest.index(after: q)...]
      rest = rest[..<q]
    }
    if rest.contains("#") { throw TsukuError(.usage, "invalid store URL '\(url)': an s3 URL has no '#' part") }
    let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    let bucket = String(parts[0])
    guard (3...63).contains(bucket.count),
      bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }),
      bucket.first!.isLetter || bucket.first!.isNumber
    else {
      throw TsukuError(
        .usage, "invalid store URL '\(url)': bucket '\(bucket)' must be 3-63 characters of a-z, 0-9, '-' and '.'")
    }
    let prefixText = parts.count > 1 ? try decode(parts[1], url: url) : ""
    let segments = prefixText.split(separator: "/")
    if segments.contains("..") || segments.contains(".") {
      throw TsukuError(.usage, "invalid store URL '\(url)': the prefix must not contain '.' or '..'")
    }
    var endpoint: String?
    var region: String?
    var style: String?
    for pair in query.split(separator: "&") {
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let value = kv.count == 2 ? try decode(kv[1], url: url) : ""
      switch kv[0] {
      case "endpoint": endpoint = try endpointURL(value, url: url)
      case "region" where !value.isEmpty: region = value
      case "style" where value == "path" || value == "virtual": style = value
      case "style": throw TsukuError(.usage, "invalid store URL '\(url)': style '\(value)' must be 'path' or 'virtual'")
      default:
        throw TsukuError(
          .usage, "invalid store URL '\(url)': unknown parameter '\(kv[0])', expected endpoint, region or style")
      }
    }
    if endpoint == nil && (region == nil || region == "auto") {
      throw TsukuError(.usage, "invalid store URL '\(url)': give endpoint=URL, or region=REGION for AWS S3")
    }
    return S3Location(
      bucket: bucket, prefix: segments.joined(separator: "/"), endpoint: endpoint, region: region ?? "auto",
      virtualHost: style.map { $0 == "virtual" })
  }

  /// `http[s]://host[:port]` with nothing after it but an optional `/`.
  private static func endpointURL(_ value: String, url: String) throws -> String {
    let lower = value.lowercased()
    guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
      throw TsukuError(.usage, "invalid store URL '\(url)': endpoint '\(value)' must start with http:// or https://")
    }
    var v = value
    while v.hasSuffix("/") { v.removeLast() }
    let hostPart = v.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
    guard hostPart.count == 3, !hostPart[2].isEmpty, !hostPart[2].contains("@") else {
      throw TsukuError(
        .usage, "invalid store URL '\(url)': endpoint '\(value)' must be scheme://host[:port], with no path")
    }
    try checkPort(hostPart[2], url: url)
    return v
  }

  /// The base of an `https://` or `http://` store: no user info, query or fragment.
  private static func httpBase(_ url: String) throws -> String {
    let scheme = url.lowercased().hasPrefix("https://") ? "https://" : "http://"
    let rest = url.dropFirst(scheme.count)
    let host = rest.prefix { $0 != "/" }
    if host.contains("@") {
      let shown = "\(scheme)…@\(host.split(separator: "@").last ?? "")"
      throw TsukuError(.usage, "invalid store URL '\(shown)': credentials in the URL are not supported")
    }
    if host.isEmpty { throw TsukuError(.usage, "invalid store URL '\(url)': no host") }
    try checkPort(host, url: url)
    if rest.contains("?") || rest.contains("#") {
      throw TsukuError(.usage, "invalid store URL '\(url)': an https store URL has no '?' or '#' part")
    }
    var base = scheme + rest
    while base.hasSuffix("/") { base.removeLast() }
    return base
  }

  /// The port after the host (`host:port`, `[v6]:port`), when there is one, is a number from
  /// 1 to 65535: libcurl would only say "URL using bad/illegal format".
  private static func checkPort(_ host: Substring, url: String) throws {
    let afterBracket = host.lastIndex(of: "]").map { host[host.index(after: $0)...] } ?? host
    guard let colon = afterBracket.lastIndex(of: ":") else { return }
    let port = afterBracket[afterBracket.index(after: colon)...]
    if port.isEmpty { return }  // `host:` is the default port, as in a browser
    guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(port.prefix(6)), port.count <= 5,
      (1...65535).contains(n)
    else {
      throw TsukuError(.usage, "invalid store URL '\(url)': port '\(port)' is not a number from 1 to 65535")
    }
  }

  private static func decode(_ s: Substring, url: String) throws -> String {
    guard let d = String(s).removingPercentEncoding else {
      throw TsukuError(.usage, "invalid store URL '\(url)': bad percent-encoding in '\(s)'")
    }
    return d
  }
}

/// `path` made absolute against the current directory, with `.` and `..` resolved.
func absolutePath(_ path: String) -> String {
  let p = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
  return URL(fileURLWithPath: p).standardizedFileURL.path
}

/// `a/b/` -> `a/b`; `.` and empty components are dropped, `..` is refused.
func normalizeSubdirectory(_ sub: String, repository: String) throws -> String {
  let parts = sub.split(separator: "/").filter { $0 != "." }
  if parts.contains("..") {
    throw TsukuError(.usage, "invalid subfolder '\(sub)' for '\(repository)': '..' is not allowed")
  }
  return parts.joined(separator: "/")
}
