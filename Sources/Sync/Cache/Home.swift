import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// `$TSUKU_HOME` (default `~/.tsuku`): all client state.
///
/// ```
/// config.toml      sources (written by `tsuku init`)
/// trust/root.json  the current trusted root (exact envelope bytes)
/// trust/state.json highest index and revocation versions seen
/// cache/           a directory store: index.json + objects/sha256/…
/// cache/meta.json  when and from where the cache was last synced
/// lock             held while a command changes state
/// ```
/// Trust lives outside `cache/`, so clearing the cache never rolls trust back.
public struct Home: Sendable {
  public let path: String
  public init(path: String) { self.path = path }

  /// `TSUKU_HOME`, else `~/.tsuku`.
  public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Home {
    if let h = env["TSUKU_HOME"], !h.isEmpty { return Home(path: h) }
    let base = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return Home(path: base + "/.tsuku")
  }

  public var configPath: String { path + "/config.toml" }
  public var trustDir: String { path + "/trust" }
  public var cacheDir: String { path + "/cache" }
  public var cache: DirectoryStore { DirectoryStore(path: cacheDir) }

  // MARK: config

  /// The configured sources and whether `tsuku init` chose a root, or nil before `init`.
  public func readConfig() throws -> Config? {
    guard let data = try FileIO.readFileIfPresent(configPath) else { return nil }
    guard let text = String(data: data, encoding: .utf8) else {
      throw TsukuError(.usage, "'\(configPath)' is not UTF-8 text")
    }
    let parsed = Result { () throws(TOMLError) in try TOML.parse(text) }
    guard case .success(let table) = parsed else {
      if case .failure(let e) = parsed { throw TsukuError(.usage, "'\(configPath)': line \(e.line): \(e.message)") }
      return nil
    }
    var c = Config()
    switch table["sources"] {
    case .array(let list)?:
      c.sources = list.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    case .string(let s)?:
      c.sources = [s]
    default: break
    }
    if case .array(let list)? = table["witnesses"] {
      c.witnesses = list.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }
    if case .integer(let n)? = table["witness_quorum"] { c.witnessQuorum = Int(clamping: n) }
    return c
  }

  public func writeConfig(_ c: Config) throws {
    try makeDirectory(path)
    var text = "# written by 'tsuku init'; TSUKU_SOURCES overrides it for one command.\n"
    text += "# Like GOPROXY: after ',' the next source is tried only when this one lacks the thing,\n"
    text += "# after '|' on any failure.\n"
    text += "sources = \"\(escape(c.sources.joined(separator: ",")))\"\n"
    if !c.witnesses.isEmpty || c.witnessQuorum > 0 {
      text += "# a log checkpoint needs cosignatures from witness_quorum of these witnesses\n"
      text += "witnesses = [\(c.witnesses.map { "\"\(escape($0))\"" }.joined(separator: ", "))]\n"
      text += "witness_quorum = \(c.witnessQuorum)\n"
    }
    try writeFileAtomically(Data(text.utf8), to: configPath)
  }

  private func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
  }

  // MARK: trust

  /// The trusted root and state, or nil when this home has trusted nothing yet.
  public func loadTrust() throws -> (TrustedRoot, TrustState)? {
    let rootPath = trustDir + "/root.json"
    guard let bytes = try FileIO.readFileIfPresent(rootPath) else { return nil }
    let root = try TrustedRoot(anchor: bytes, what: "trusted root '\(rootPath)'")
    var state = TrustState()
    if let s = try FileIO.readFileIfPresent(trustDir + "/state.json") {
      state = try JSON.decode(TrustState.self, s, what: "'\(trustDir)/state.json'")
    }
    return (root, state.reconciled(withRoot: root.version))
  }

  /// Saves trust; fails closed (throws) when the state directory cannot be written.
  public func saveTrust(root: TrustedRoot, state: TrustState) throws {
    try makeDirectory(trustDir)
    var state = state
    state.root_version = root.version
    try writeFileAtomically(root.bytes, to: trustDir + "/root.json")
    try writeFileAtomically(JSON.encode(state, pretty: true), to: trustDir + "/state.json")
  }

  // MARK: cache metadata

  public struct CacheMeta: Codable, Sendable {
    /// When the cached index was last replaced.
    public var synced_at: String
    /// When a source last confirmed it (a sync that found nothing new also confirms it).
    public var confirmed_at: String?
    public var source: String
    public var index_version: Int
    /// The ETag `source` gave for this index.json, for the next conditional read.
    public var etag: String?
    public var recipes: Int?
    public var golden: Int?
    /// The SHA-256 of the cached index.json the ETag describes.
    public var index_sha256: String?
    public init(
      synced_at: String, confirmed_at: String?, source: String, index_version: Int, etag: String? = nil,
      recipes: Int? = nil, golden: Int? = nil, index_sha256: String? = nil
    ) {
      self.index_sha256 = index_sha256
      self.synced_at = synced_at
      self.confirmed_at = confirmed_at
      self.source = source
      self.index_version = index_version
      self.etag = etag
      self.recipes = recipes
      self.golden = golden
    }
  }

  public func readCacheMeta() -> CacheMeta? {
    // A meta file that cannot be read is no meta: the cache then looks unconfirmed.
    ((try? FileIO.readFileIfPresent(cacheDir + "/meta.json")) ?? nil).flatMap {
      try? JSONDecoder().decode(CacheMeta.self, from: $0)
    }
  }

  public func writeCacheMeta(_ m: CacheMeta) throws {
    try makeDirectory(cacheDir)
    // Not fsynced: losing it in a crash only makes the cache look older than it is.
    try writeFileAtomically(JSON.encode(m, pretty: true), to: cacheDir + "/meta.json", durable: false)
  }

  // MARK: locking and files

  /// Runs `body` holding an exclusive lock on `$TSUKU_HOME/lock`, so concurrent commands that
  /// change state take turns. A `lock` that is a symbolic link (or not a regular file) is
  /// refused, never followed (`FileIO.open`).
  public func withLock<T>(_ body: () throws -> T) throws -> T {
    try makeDirectory(path)
    let lockPath = path + "/lock"
    let fd = try FileIO.open(lockPath, O_RDWR | O_CREAT, failing: "cannot lock")
    defer { close(fd) }
    let e = FileIO.lockRaw(fd, LOCK_EX)
    if e != 0 { throw TsukuError.io("cannot lock", lockPath, errno: e) }
    defer { flock(fd, LOCK_UN) }
    return try body()
  }

  func makeDirectory(_ p: String) throws { try FileIO.makeDirectories(p) }
}
