import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// `tsuku registry export`: the verified registry written as a folder in the Go client's
/// layout (`GoLayout`), which today's tsuku reads through `TSUKU_REGISTRY_URL=DIR`.
///
/// Every byte comes through the client's verified read path (`Client.recipe`, `Client.plan`:
/// hash, size, expiry, revocation). The tree is built beside DIR under a temporary name,
/// fsynced, and swapped in with one `renameat2` (`RENAME_EXCHANGE` over an earlier export,
/// `RENAME_NOREPLACE` where there is none), so a reader sees the old tree or the new one,
/// never a mix. `DIR/.tsuku-export/` keeps what `check` needs to re-verify it later: the
/// signed `index.json`, the index tree, shards and revocation list it pins, and a manifest of
/// every exported path with its hash and size.
public enum GoExport {
  /// The folder inside an export that marks it as one.
  public static let markerDir = ".tsuku-export"
  public static let manifestPath = ".tsuku-export/manifest.json"
  static let indexPath = ".tsuku-export/index.json"
  static let blobsDir = ".tsuku-export/blobs"
  /// The temporary trees are `.<DIR's name>` followed by this and `<pid>-<random>`.
  static let temporaryInfix = ".tsuku-export-tmp-"
  /// Largest manifest `check` reads (a million paths at ~150 bytes).
  static let manifestLimit = 256 << 20

  /// One exported file: its path in the layout, its SHA-256 and size.
  public struct FileRecord: Codable, Sendable, Equatable {
    public var path: String
    public var sha256: String
    public var size: Int
  }

  /// A blob the export left out because the revocation list names it.
  public struct Revoked: Codable, Sendable, Equatable {
    /// `recipe` or `golden`.
    public var kind: String
    public var name: String
    public var version: String?
    public var platform: String?
    public var sha256: String
    public var reason: String
    /// For a recipe: its golden files left out with it (with `--golden`).
    public var golden_left_out: Int?
  }

  /// A name removed from another recipe's `satisfies` in `recipes.json`, because the export
  /// lacks the recipe of that name (it is revoked): the Go loader would otherwise resolve the
  /// absent name to that other recipe.
  public struct DroppedSatisfies: Codable, Sendable, Equatable {
    public var recipe: String
    public var ecosystem: String
    public var name: String
  }

  /// `.tsuku-export/manifest.json`.
  public struct Manifest: Codable, Sendable {
    public var type = "tsuku-export"
    public var format = 1
    public var index_version: Int
    /// SHA-256 of `.tsuku-export/index.json`, the signed index exported.
    public var index_sha256: String
    public var exported_at: String
    /// `generated_at` of the `recipes.json` written.
    public var generated_at: String
    public var golden: Bool
    /// Every file of the layout, sorted by path.
    public var files: [FileRecord]
    /// The index blobs kept under `.tsuku-export/blobs/` (tree, subtrees, shards, revocation list).
    public var index_blobs: [FileRecord]
    public var revoked: [Revoked]
    public var satisfies_dropped: [DroppedSatisfies]
  }

  /// What an export did.
  public struct Report: Encodable, Sendable {
    public var dir: String
    public var index_version: Int
    public var recipes: Int
    public var critical: Int
    public var golden: Int
    public var files: Int
    public var bytes: Int
    /// True when an earlier export (or an empty folder) was replaced.
    public var replaced: Bool
    public var revoked: [Revoked]
    public var satisfies_dropped: [DroppedSatisfies]
    public var seconds: Double
  }

  // MARK: export

  /// Exports the registry `client` reads into `dir` (made absolute; its parents are created).
  /// Throws a usage error for a `dir` that exists and is neither an earlier export nor empty;
  /// on any failure `dir` is left as it was and the temporary tree is removed.
  public static func export(
    client: Client, to dirArgument: String, golden: Bool, warn: (String) -> Void, progress: (String) -> Void
  ) throws -> Report {
    let started = Date()
    let (dir, parent, base) = try split(dirArgument)
    try FileIO.makeDirectories(parent)
    // One export at a time beside DIR (a second one waits): the parent folder itself is locked.
    let lockFD = FileIO.openRaw(parent, O_RDONLY | O_DIRECTORY)
    guard lockFD >= 0 else { throw TsukuError.io("cannot open", parent, errno: errno) }
    defer { close(lockFD) }
    let lockError = FileIO.lockRaw(lockFD, LOCK_EX)
    if lockError != 0 { throw TsukuError.io("cannot lock", parent, errno: lockError) }

    let existing = try replaceable(dir)
    sweepTemporaries(parent: parent, base: base)

    // The index and the entries, synced first when the cache lacks blobs the export needs.
    var idx = try client.loadIndex()
    var entries = try client.entries()
    if !client.chain.isEmpty {
      let lacking = entries.reduce(0) { n, e in
        var refs = [e.recipe.sha256]
        if golden { refs += e.golden.map(\.sha256) }
        return n + refs.filter { idx.revoked[$0] == nil && !((try? client.cache.store.contains($0)) ?? false) }.count
      }
      if lacking > 0 {
        progress("fetching \(lacking) blobs the cache lacks")
        do {
          _ = try client.updateRegistry(includeGolden: golden)
          idx = try client.loadIndex()
          entries = try client.entries()
        } catch let e as TsukuError {
          // Each read below tries the sources again and says what it lacks.
          warn("the sync before the export failed: \(e.message)")
        }
      }
    }

    let tmp = "\(parent)/.\(base)\(temporaryInfix)\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    guard mkdir(tmp, 0o755) == 0 else { throw TsukuError.io("cannot create directory", tmp, errno: errno) }
    var swapped = false
    defer { if !swapped { try? FileIO.removeTree(tmp) } }
    let tree = TreeWriter(root: tmp)
    // The marker first: a temporary tree left by a killed export is recognised as one.
    try tree.makeFolder(markerDir)

    var files = [FileRecord]()
    var manifestRecipes = [GoLayout.ManifestRecipe]()
    var revoked = [Revoked]()
    var critical = 0
    var goldenCount = 0
    var bytes = 0
    for (i, e) in entries.enumerated() {
      progress("exporting recipe \(i + 1) of \(entries.count): \(e.name)")
      if let reason = idx.revoked[e.recipe.sha256] {
        let withGolden = golden ? e.golden.count : 0
        warn(
          "recipe '\(e.name)' (sha256 \(e.recipe.sha256.hex.prefix(16))) is revoked: \(reason); left out of the export"
            + (withGolden > 0 ? " with its \(withGolden) golden file\(withGolden == 1 ? "" : "s")" : ""))
        revoked.append(
          Revoked(
            kind: "recipe", name: e.name, sha256: e.recipe.sha256.hex, reason: reason,
            golden_left_out: golden ? withGolden : nil))
        continue
      }
      let data = try client.recipe(e.name)
      guard let m = GoLayout.manifestRecipe(data) else {
        throw TsukuError(
          .integrity, "recipe '\(e.name)' has no [metadata] table with a name: recipes.json cannot list it")
      }
      manifestRecipes.append(m)
      files.append(try tree.write(GoLayout.recipePath(e.name), data))
      bytes += data.count
      if e.category == .critical { critical += 1 }
      guard golden else { continue }
      for g in e.golden.sorted(by: { ($0.platform, $0.version) < ($1.platform, $1.version) }) {
        if let reason = idx.revoked[g.sha256] {
          warn(
            "golden file of '\(e.name)' \(g.version) \(g.platform) (sha256 \(g.sha256.hex.prefix(16))) is revoked: \(reason); left out of the export"
          )
          revoked.append(
            Revoked(
              kind: "golden", name: e.name, version: g.version, platform: g.platform, sha256: g.sha256.hex,
              reason: reason))
          continue
        }
        let d = try client.plan(e.name, platform: g.platform, version: g.version)
        files.append(
          try tree.write(
            GoLayout.planPath(name: e.name, category: e.category, version: g.version, platform: g.platform), d))
        bytes += d.count
        goldenCount += 1
      }
    }

    // recipes.json, with the names of revoked recipes taken out of every satisfies list.
    let generatedAt = Date(timeIntervalSince1970: client.now.timeIntervalSince1970.rounded(.down))
    let (listed, dropped) = withoutSatisfies(
      manifestRecipes, names: Set(revoked.filter { $0.kind == "recipe" }.map(\.name)))
    let manifestBytes = GoLayout.manifest(listed, generatedAt: generatedAt)
    for p in GoLayout.manifestPaths { files.append(try tree.write(p, manifestBytes)) }

    // What `check` needs: the signed index and the blobs it pins down to the entries.
    progress("writing the signed index and its shards")
    var indexBlobs = [ObjectID: Data]()
    _ = try IndexContents.load(idx.verified) { id, size, what in
      let d = try client.blob(BlobRef(sha256: id, size: size), what: what)
      indexBlobs[id] = d
      return d
    }
    if let r = idx.verified.revocation?.list { indexBlobs[r.sha256] = try client.blob(r, what: "revocation list") }
    try tree.makeFolder(blobsDir)
    var blobRecords = [FileRecord]()
    for (id, d) in indexBlobs.sorted(by: { $0.key < $1.key }) {
      blobRecords.append(try tree.write("\(blobsDir)/\(id.hex)", d))
    }
    let indexRecord = try tree.write(indexPath, idx.verified.bytes)
    let manifest = Manifest(
      index_version: idx.version, index_sha256: indexRecord.sha256, exported_at: Timestamp.format(client.now),
      generated_at: GoLayout.timestamp(generatedAt), golden: golden, files: files.sorted { $0.path < $1.path },
      index_blobs: blobRecords, revoked: revoked, satisfies_dropped: dropped)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    _ = try tree.write(manifestPath, try encoder.encode(manifest) + Data("\n".utf8))
    try tree.syncFolders()

    // The swap: one rename, then the old tree (now under the temporary name) is removed.
    progress("swapping the new tree in")
    CrashPoint.step("export: before swap")
    if existing {
      try rename2(tmp, dir, flags: renameExchange)
      // Whatever was swapped out must still be an export or empty (it could have been
      // replaced since it was checked): otherwise it is swapped back and left alone.
      if (try? replaceable(tmp)) != true {
        try? rename2(tmp, dir, flags: renameExchange)
        throw TsukuError(
          .usage, "'\(dir)' changed during the export and is no longer an earlier export; left it as it was")
      }
    } else {
      try rename2(tmp, dir, flags: renameNoReplace)
    }
    swapped = true
    FileIO.syncFolder(parent)
    CrashPoint.step("export: swapped")
    if existing {
      do { try FileIO.removeTree(tmp) } catch let e as TsukuError {
        warn("the export is in place, but the old tree '\(tmp)' could not be removed: \(e.message)")
      }
    }
    return Report(
      dir: dir, index_version: idx.version, recipes: manifestRecipes.count, critical: critical, golden: goldenCount,
      files: files.count, bytes: bytes, replaced: existing, revoked: revoked, satisfies_dropped: dropped,
      seconds: Date().timeIntervalSince(started))
  }

  /// `recipes` with `names` removed from every `satisfies` list (aliases included), empty lists
  /// dropped, and what was removed.
  static func withoutSatisfies(_ recipes: [GoLayout.ManifestRecipe], names: Set<String>) -> (
    [GoLayout.ManifestRecipe], [DroppedSatisfies]
  ) {
    guard !names.isEmpty else { return (recipes, []) }
    var dropped = [DroppedSatisfies]()
    let out = recipes.map { r in
      var r = r
      for ecosystem in r.satisfies.keys.sorted() {
        let list = r.satisfies[ecosystem]!
        for n in list where names.contains(n) {
          dropped.append(DroppedSatisfies(recipe: r.name, ecosystem: ecosystem, name: n))
        }
        let kept = list.filter { !names.contains($0) }
        r.satisfies[ecosystem] = kept.isEmpty ? nil : kept
      }
      return r
    }
    return (out, dropped)
  }

  // MARK: the folder and the swap

  /// DIR made absolute and clean, its parent and its last component. Refuses `/`.
  static func split(_ argument: String) throws -> (String, String, String) {
    guard !argument.isEmpty, !argument.utf8.contains(0) else {
      throw TsukuError(.usage, "invalid export folder '\(argument)'")
    }
    // Cleaned by its text alone ('.', '..', repeated '/'): a link named as DIR stays a link
    // (and is refused), never replaced by its target.
    let full = argument.hasPrefix("/") ? argument : FileManager.default.currentDirectoryPath + "/" + argument
    var parts = [Substring]()
    for part in full.split(separator: "/") where part != "." {
      if part == ".." { _ = parts.popLast() } else { parts.append(part) }
    }
    guard let last = parts.last else {
      throw TsukuError(.usage, "invalid export folder '\(argument)': name a folder below '/'")
    }
    let parent = "/" + parts.dropLast().joined(separator: "/")
    return ("/" + parts.joined(separator: "/"), parent, String(last))
  }

  /// Whether `dir` exists (false: it does not). Throws a usage error when it is anything but
  /// an earlier export (it holds `.tsuku-export/manifest.json`) or an empty folder: an export
  /// never replaces a folder it did not write.
  static func replaceable(_ dir: String) throws -> Bool {
    var st = stat()
    if lstat(dir, &st) != 0 {
      if errno == ENOENT { return false }
      throw TsukuError.io("cannot read", dir, errno: errno)
    }
    guard st.st_mode & S_IFMT == S_IFDIR else {
      throw TsukuError(
        .usage, "refusing to export to '\(dir)': it is \(kind(st.st_mode)), not a folder")
    }
    var marker = stat()
    if lstat(dir + "/" + manifestPath, &marker) == 0, marker.st_mode & S_IFMT == S_IFREG { return true }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? ["?"]
    guard names.isEmpty else {
      throw TsukuError(
        .usage,
        "refusing to export to '\(dir)': it is not empty and not an earlier export (no \(manifestPath)); name a new or empty folder"
      )
    }
    return true
  }

  /// Removes temporary trees that exports killed before they finished left beside DIR: named
  /// as this command names them, holding its marker folder, made by a process that is gone.
  static func sweepTemporaries(parent: String, base: String) {
    let prefix = ".\(base)\(temporaryInfix)"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(prefix) {
      guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid != getpid() else { continue }
      if kill(pid, 0) == 0 || errno != ESRCH { continue }
      var st = stat()
      guard lstat("\(parent)/\(name)/\(markerDir)", &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { continue }
      try? FileIO.removeTree("\(parent)/\(name)")
    }
  }

  static let renameNoReplace: UInt32 = 1
  static let renameExchange: UInt32 = 2

  private typealias RenameAt2 =
    @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
  /// glibc's `renameat2` (2.28 and later), looked up at run time: Swift's Glibc module does not
  /// declare it.
  nonisolated(unsafe) private static let renameat2: RenameAt2? = dlsym(
    UnsafeMutableRawPointer(bitPattern: 0), "renameat2"
  ).map { unsafeBitCast($0, to: RenameAt2.self) }

  /// `renameat2(from, to, flags)`; a failure names both paths.
  static func rename2(_ from: String, _ to: String, flags: UInt32) throws {
    guard let f = renameat2 else {
      throw TsukuError(.other, "cannot swap '\(from)' into '\(to)': this C library has no renameat2")
    }
    if f(AT_FDCWD, from, AT_FDCWD, to, flags) != 0 {
      let e = errno
      throw TsukuError(.other, "cannot move '\(from)' to '\(to)': \(String(cString: strerror(e)))")
    }
  }

  /// Writes the files of a tree: each created new (never over another), written whole and
  /// fsynced; its folders fsynced by `syncFolders` once everything is in.
  final class TreeWriter {
    let root: String
    private var folders = Set<String>()

    init(root: String) { self.root = root }

    func makeFolder(_ rel: String) throws {
      var path = ""
      for part in rel.split(separator: "/") {
        path += path.isEmpty ? String(part) : "/" + part
        if folders.contains(path) { continue }
        if mkdir(root + "/" + path, 0o755) != 0 && errno != EEXIST {
          throw TsukuError.io("cannot create directory", root + "/" + path, errno: errno)
        }
        folders.insert(path)
      }
    }

    func write(_ rel: String, _ data: Data) throws -> FileRecord {
      let folder = (rel as NSString).deletingLastPathComponent
      if !folder.isEmpty { try makeFolder(folder) }
      let path = root + "/" + rel
      let fd = try FileIO.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644, failing: "cannot write")
      defer { close(fd) }
      try FileIO.write(fd, data, path)
      if fsync(fd) != 0 { throw TsukuError.io("cannot sync", path, errno: errno) }
      CrashPoint.step("export: wrote \(rel)")
      return FileRecord(path: rel, sha256: SHA256.hash(data).hex, size: data.count)
    }

    /// fsyncs every folder, deepest first, then the root.
    func syncFolders() throws {
      for f in folders.sorted(by: { $0.count > $1.count }) + [""] {
        let path = f.isEmpty ? root : root + "/" + f
        let fd = FileIO.openRaw(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw TsukuError.io("cannot open", path, errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw TsukuError.io("cannot sync", path, errno: errno) }
      }
    }
  }
}
