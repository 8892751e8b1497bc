import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// `$TSUKU_HOME` (default `~/.tsuku`): all client state.
///
/// ```
/// config.toml      shared with the Go client; this program's settings are its [recipe_store]
///                  table (written by `tsuku init`, edited in place: `ConfigFile`)
/// trust/root.json  the current trusted root (exact envelope bytes)
/// trust/state.json highest index and revocation versions seen
/// cache/           shared with the Go client (its versions/, downloads/, taps/, ...); ours are
///                  the directory store's names (`ownCacheNames`): index.json, objects/, packs/ …
/// cache/meta.json  when and from where the cache was last synced
/// store-audit.log  the audit log (the Go client appends its own lines to audit.log)
/// lock             held while a command changes state
/// ```
/// Trust lives outside `cache/`, so clearing the cache never rolls trust back. Every name this
/// program writes is one the Go client does not use (see docs/cli.md, "Sharing TSUKU_HOME with
/// the Go client").
public struct Home: Sendable {
  public let path: String
  public init(path: String) { self.path = path }

  /// `TSUKU_HOME`, else `~/.tsuku`.
  public static func fromEnvironment(_ env: [String: String] = ProcessEnvironment.current) -> Home {
    if let h = env["TSUKU_HOME"], !h.isEmpty { return Home(path: h) }
    let base = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return Home(path: base + "/.tsuku")
  }

  public var configPath: String { path + "/config.toml" }
  public var trustDir: String { path + "/trust" }
  public var cacheDir: String { path + "/cache" }
  /// The audit log. It used to be `audit.log`, a name the Go client appends its own
  /// auto-install lines to (`AuditLog` moves this program's history over once).
  public var auditLogPath: String { path + "/store-audit.log" }
  /// The audit log's old name (shared with the Go client).
  public var legacyAuditLogPath: String { path + "/audit.log" }
  public var cache: DirectoryStore { DirectoryStore(path: cacheDir) }

  // MARK: config

  /// The configured sources and whether `tsuku init` chose a root, or nil before `init`.
  /// `config.toml` is shared with the Go tsuku client: this program reads its own
  /// `[recipe_store]` table (or, written by older versions, top-level keys; `ConfigFile`).
  public func readConfig() throws -> Config? {
    guard let data = try FileIO.readFileIfPresent(configPath) else { return nil }
    return ConfigFile.config(from: try ConfigFile.parse(data, path: configPath))
  }

  /// Sets this program's table in `config.toml`, keeping every other byte as it was (the Go
  /// client's keys and tables, comments, order). A file that does not parse is refused and
  /// left as it is. Written through a temporary file, fsynced and renamed into place; a file
  /// another process replaced meanwhile is read and edited again. A `config.toml` that is a
  /// symbolic link is read through it, and the link itself is replaced by the edited file:
  /// nothing is written outside the home. The file keeps its permissions (new: 0600, as the
  /// Go client writes it: it may hold `[secrets]`). Returns a warning to show, if any.
  @discardableResult
  public func writeConfig(_ c: Config) throws -> String? {
    try makeDirectory(path)
    for _ in 0..<5 {
      let seen = Self.identity(configPath)
      let old = try FileIO.readFileIfPresent(configPath)
      let edited = try ConfigFile.edit(old, with: c, path: configPath)
      var mode: mode_t = 0o600
      var st = stat()
      if stat(configPath, &st) == 0 && st.st_mode & S_IFMT == S_IFREG { mode = st.st_mode & 0o7777 }
      let file = try AtomicFile(
        temporary: "\(configPath).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", mode: mode,
        failure: { _, _, e in TsukuError(.other, "cannot write '\(configPath)': \(String(cString: strerror(e)))") })
      defer { file.abandon() }
      _ = fchmod(file.fd, mode)
      try edited.withUnsafeBytes { try file.write($0) }
      // Another writer (the Go client saves through a rename too) replaced the file while it
      // was being edited: edit its new content rather than lose it.
      guard Self.identity(configPath) == seen else { continue }
      try file.commit(as: configPath)
      return seen?.link == true
        ? "'\(configPath)' was a symbolic link; it is now a file of its own (the link's target was not changed)" : nil
    }
    throw TsukuError(.conflict, "cannot write '\(configPath)': it kept changing while it was edited; try again")
  }

  struct FileIdentity: Equatable {
    var dev: UInt, ino: UInt, size: Int, sec: Int, nsec: Int, link: Bool
  }

  static func identity(_ p: String) -> FileIdentity? {
    var st = stat()
    guard lstat(p, &st) == 0 else { return nil }
    return FileIdentity(
      dev: UInt(st.st_dev), ino: UInt(st.st_ino), size: Int(st.st_size), sec: st.st_mtim.tv_sec,
      nsec: st.st_mtim.tv_nsec, link: st.st_mode & S_IFMT == S_IFLNK)
  }

  // MARK: cache

  /// The names this program's cache uses in `cache/`: the directory store's layout, the sync
  /// record, the access log and the git history maps. The Go client keeps `versions/`,
  /// `downloads/`, `cargo-registry/`, `keys/`, `taps/`, `distributed/`, `updates/` and
  /// `binary-index.db` there; none is one of these.
  public static let ownCacheNames: Set<String> = [
    "index.json", "objects", "packs", "quarantine", "root", "index", "log", "meta.json", "access.log",
    "git-history", ".lock",
  ]

  /// Whether `name`, an entry of `cache/`, is this program's: one of `ownCacheNames`, or a
  /// temporary file of one (`.tmp-…` from the directory store, `<name>.tmp-…` from a whole-file
  /// write).
  public static func isOwnCacheEntry(_ name: String) -> Bool {
    if ownCacheNames.contains(name) || name.hasPrefix(".tmp-") { return true }
    return ownCacheNames.contains { name.hasPrefix($0 + ".tmp-") }
  }

  /// Removes this program's entries of `cache/`, and the folder itself when nothing else is
  /// left in it; the Go client's files stay. Links are removed, never followed. Returns the
  /// names removed and the names kept, sorted.
  @discardableResult
  public func removeOwnCache() throws -> (removed: [String], kept: [String]) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: cacheDir) else {
      try FileIO.removeTree(cacheDir)
      return ([], [])
    }
    let own = names.filter(Self.isOwnCacheEntry).sorted()
    for n in own { try FileIO.removeTree(cacheDir + "/" + n) }
    rmdir(cacheDir)  // only when empty
    return (own, names.filter { !Self.isOwnCacheEntry($0) }.sorted())
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

  public struct CacheMeta: Codable, Equatable, Sendable {
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
      try? JSON.decode(CacheMeta.self, $0, what: "cache record")
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
