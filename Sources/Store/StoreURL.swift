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
/// Paths, `dir` and `REF` are percent-decoded (`%20` for a space, `%23` for `#`, `%3F` for `?`).
/// `s3://`, `https://` and `http://` are recognised but not supported yet; anything else is a
/// usage error.
public enum StoreURL {
  /// What a URL names, before anything is opened.
  enum Target: Equatable {
    case directory(path: String)
    case git(repository: String, subdirectory: String?, ref: String?)
  }

  /// Opens the store `url` names (a git repository is opened now; a directory is not checked).
  public static func open(_ url: String) throws -> any ObjectStore {
    switch try parse(url) {
    case .directory(let path): return DirectoryStore(path: path)
    case .git(let repository, let sub, let ref):
      return try GitStore(repository: repository, ref: ref, subdirectory: sub)
    }
  }

  private static let expected = "file:///path, a path, or git+file:///repo[?dir=SUB][#REF]"

  static func parse(_ url: String) throws -> Target {
    let lower = url.lowercased()
    if url.isEmpty { throw TsukuError(.usage, "empty store URL: expected \(expected)") }
    for scheme in ["s3://", "https://", "http://"] where lower.hasPrefix(scheme) {
      throw TsukuError(.usage, "source '\(url)': s3 and https stores are not supported yet")
    }
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
