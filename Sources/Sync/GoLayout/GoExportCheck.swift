import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

extension GoExport {
  /// One thing wrong with an export, naming the path.
  public struct Problem: Encodable, Sendable, Equatable {
    public var path: String
    public var problem: String
    public var line: String { "\(path): \(problem)" }
  }

  /// What `export --check` found.
  public struct CheckReport: Encodable, Sendable {
    public var dir: String
    public var ok: Bool
    public var index_version: Int?
    public var files_checked: Int
    public var bytes_checked: Int
    public var problems: [Problem]
  }

  /// Re-verifies the export in `dir`: its signed `index.json` against `root` (the home's
  /// trusted root) and unexpired at `now`; the tree, shards and revocation list under
  /// `.tsuku-export/blobs/` by hash; every file of the manifest present with its hash and
  /// size, that hash the one the signed index pins for the path and not revoked (by the
  /// export's revocation list or `revoked`, the home's current one); no file the index pins
  /// missing, no file the manifest does not list; both `recipes.json` exactly what the
  /// exported recipes make.
  public static func check(dir dirArgument: String, root: TrustedRoot, revoked current: [ObjectID: String], now: Date)
    -> CheckReport
  {
    let dir = (try? split(dirArgument).0) ?? dirArgument
    // An export beside the same folder finishes (or has not swapped yet) before the check
    // reads: it holds the parent's lock exclusively while it builds and swaps.
    let lockFD = FileIO.openRaw((dir as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
    if lockFD >= 0 { _ = FileIO.lockRaw(lockFD, LOCK_SH) }
    defer { if lockFD >= 0 { close(lockFD) } }
    var problems = [Problem]()
    var checked = 0
    var bytesChecked = 0
    func report(_ version: Int? = nil) -> CheckReport {
      CheckReport(
        dir: dir, ok: problems.isEmpty, index_version: version, files_checked: checked, bytes_checked: bytesChecked,
        problems: problems)
    }
    func problem(_ path: String, _ what: String) { problems.append(Problem(path: path, problem: what)) }
    func message(_ e: any Error) -> String {
      (e as? TsukuError).map { ([$0.message] + $0.details).joined(separator: "; ") } ?? "\(e)"
    }

    // The manifest of hashes.
    let manifest: Manifest
    do {
      guard let data = try FileIO.readFileIfPresent(dir + "/" + manifestPath) else {
        problem(manifestPath, "missing: '\(dir)' is not an export made by 'tsuku registry export'")
        return report()
      }
      guard data.count <= manifestLimit else {
        problem(manifestPath, "larger than \(manifestLimit) bytes")
        return report()
      }
      manifest = try JSON.decode(Manifest.self, data, what: manifestPath)
      guard manifest.type == "tsuku-export", manifest.format == 1 else {
        problem(manifestPath, "type '\(manifest.type)' format \(manifest.format); expected tsuku-export format 1")
        return report()
      }
    } catch {
      problem(manifestPath, message(error))
      return report()
    }

    // The signed index, its blobs and its revocation list.
    var trusted: TrustedMetadata
    let contents: IndexContents
    do {
      guard let bytes = try FileIO.readFileIfPresent(dir + "/" + indexPath) else {
        problem(indexPath, "missing")
        return report()
      }
      if SHA256.hash(bytes).hex != manifest.index_sha256 {
        problem(indexPath, "sha256 \(SHA256.hash(bytes).hex), the manifest says \(manifest.index_sha256)")
      }
      trusted = try TrustedMetadata.signaturesOnly(bytes, root: root, source: dir)
      let verified = trusted.index!
      if verified.index.version != manifest.index_version {
        problem(indexPath, "index version \(verified.index.version), the manifest says \(manifest.index_version)")
      }
      if let expiry = verified.index.expiryDate, expiry <= now {
        problem(indexPath, "the signed index expired at \(verified.index.expires); export again from a synced home")
      }
      let listedBlobs = Dictionary(manifest.index_blobs.map { ($0.sha256, $0) }, uniquingKeysWith: { a, _ in a })
      contents = try IndexContents.load(verified) { id, size, what in
        let rel = "\(blobsDir)/\(id.hex)"
        guard listedBlobs[id.hex] != nil, let d = try FileIO.readFileIfPresent(dir + "/" + rel) else {
          throw TsukuError(.integrity, "\(rel): the \(what) the signed index pins is missing")
        }
        guard d.count == size, SHA256.hash(d) == id else {
          throw TsukuError(.integrity, "\(rel): the \(what) does not match the hash the signed index pins (tampered)")
        }
        return d
      }
      if let r = verified.revocation?.list {
        let rel = "\(blobsDir)/\(r.sha256.hex)"
        guard let d = try FileIO.readFileIfPresent(dir + "/" + rel), d.count == r.size, SHA256.hash(d) == r.sha256
        else {
          throw TsukuError(.integrity, "\(rel): the revocation list is missing or does not match its pinned hash")
        }
        try trusted.updateRevocationList(d, what: "revocation list")
      }
    } catch {
      problem(indexPath, message(error))
      return report()
    }
    let version = contents.version
    let revoked = trusted.revoked.merging(current) { a, _ in a }

    // What the signed index pins for each path of the layout.
    struct Pin {
      var id: ObjectID
      var size: Int
      var label: String
    }
    // Paths whose blob is revoked (a golden file goes with its revoked recipe) must be absent.
    var pins = [String: Pin]()
    var revokedPaths = Set<String>()
    var revokedNames = Set<String>()
    for e in contents.entries {
      let recipePath = GoLayout.recipePath(e.name)
      pins[recipePath] = Pin(id: e.recipe.sha256, size: e.recipe.size, label: "recipe '\(e.name)'")
      let recipeRevoked = revoked[e.recipe.sha256] != nil
      if recipeRevoked {
        revokedNames.insert(e.name)
        revokedPaths.insert(recipePath)
      }
      guard manifest.golden else { continue }
      for g in e.golden {
        let path = GoLayout.planPath(name: e.name, category: e.category, version: g.version, platform: g.platform)
        pins[path] = Pin(id: g.sha256, size: g.size, label: "golden file of '\(e.name)' \(g.version) \(g.platform)")
        if recipeRevoked || revoked[g.sha256] != nil { revokedPaths.insert(path) }
      }
    }

    // Every listed file: on disk with its hash and size, pinned, not revoked.
    var listed = Set<String>()
    var recipeBytes = [String: Data]()
    for f in manifest.files {
      guard listed.insert(f.path).inserted else {
        problem(f.path, "listed twice in the manifest")
        continue
      }
      let route: GoLayout.Route?
      do { route = try GoLayout.route("/" + f.path) } catch {
        problem(f.path, "not a path of the Go client's layout: \(message(error))")
        continue
      }
      guard let route else {
        problem(f.path, "not a path of the Go client's layout")
        continue
      }
      if route != .manifest {
        if let pin = pins[f.path] {
          if pin.id.hex != f.sha256 || pin.size != f.size {
            problem(
              f.path,
              "the manifest lists sha256 \(f.sha256.prefix(16)), the signed index pins \(pin.id.hex.prefix(16)) for \(pin.label)"
            )
          }
        } else {
          problem(f.path, "not pinned by the signed index (version \(version))")
        }
      }
      if let id = ObjectID(hex: f.sha256), let reason = revoked[id] {
        problem(f.path, "sha256 \(f.sha256.prefix(16)) is revoked: \(reason)")
      } else if revokedPaths.contains(f.path) {
        problem(f.path, "its recipe is revoked: the export must leave it out")
      }
      let data: Data
      do {
        guard let d = try readListed(dir + "/" + f.path, limit: f.size) else {
          problem(f.path, "missing")
          continue
        }
        data = d
      } catch {
        problem(f.path, message(error))
        continue
      }
      checked += 1
      bytesChecked += data.count
      let hash = SHA256.hash(data).hex
      if data.count != f.size || hash != f.sha256 {
        problem(
          f.path,
          "sha256 \(hash.prefix(16)) and \(data.count) bytes, the manifest says \(f.sha256.prefix(16)) and \(f.size) bytes (tampered)"
        )
        continue
      }
      if case .recipe(let name) = route { recipeBytes[name] = data }
    }
    for (path, pin) in pins.sorted(by: { $0.key < $1.key }) where !listed.contains(path) && !revokedPaths.contains(path)
    {
      problem(path, "missing: the signed index pins \(pin.label), the export lacks it")
    }
    for p in GoLayout.manifestPaths where !listed.contains(p) { problem(p, "missing") }

    // recipes.json: exactly what the exported recipes make.
    if let date = ISO8601DateFormatter().date(from: manifest.generated_at) {
      let recipes = recipeBytes.sorted { $0.key < $1.key }.compactMap { GoLayout.manifestRecipe($0.value) }
      let expected = GoLayout.manifest(withoutSatisfies(recipes, names: revokedNames).0, generatedAt: date)
      for p in GoLayout.manifestPaths where listed.contains(p) {
        if let d = try? readListed(dir + "/" + p, limit: expected.count + 1), d != expected,
          SHA256.hash(d).hex == manifest.files.first(where: { $0.path == p })?.sha256
        {
          problem(p, "does not match the recipes.json the exported recipes make")
        }
      }
    } else {
      problem(manifestPath, "invalid generated_at '\(manifest.generated_at)'")
    }

    // Nothing else in the folder.
    let allowed = Set([manifestPath, indexPath] + manifest.index_blobs.map { "\(blobsDir)/\($0.sha256)" })
    for extra in walk(dir) where !listed.contains(extra.path) && !allowed.contains(extra.path) {
      problem(extra.path, extra.kind == nil ? "extra file: the manifest does not list it" : "extra: \(extra.kind!)")
    }
    problems.sort { $0.path < $1.path }
    return report(version)
  }

  /// The bytes of a listed file, at most `limit + 1` read (a longer file is a mismatch, not a
  /// reason to read it all); nil when there is none; a link or other non-file is refused.
  static func readListed(_ path: String, limit: Int) throws -> Data? {
    var st = stat()
    if lstat(path, &st) != 0 { return errno == ENOENT || errno == ENOTDIR ? nil : try FileIO.readFileIfPresent(path) }
    guard st.st_mode & S_IFMT == S_IFREG else {
      throw TsukuError(.integrity, "it is \(kind(st.st_mode)), not a regular file")
    }
    guard let fd = try FileIO.openIfPresent(path, O_RDONLY | O_NOFOLLOW, failing: "cannot read") else { return nil }
    defer { close(fd) }
    let size = try FileIO.size(fd, path)
    return try FileIO.read(fd, count: min(size, limit + 1), path)
  }

  /// Every entry under `dir` that is not a folder, relative to it; `kind` is nil for a regular
  /// file, else what it is (a symbolic link is listed, never followed).
  static func walk(_ dir: String) -> [(path: String, kind: String?)] {
    var out = [(path: String, kind: String?)]()
    func visit(_ rel: String) {
      let full = rel.isEmpty ? dir : dir + "/" + rel
      for name in ((try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []).sorted() {
        let r = rel.isEmpty ? name : rel + "/" + name
        var st = stat()
        guard lstat(dir + "/" + r, &st) == 0 else { continue }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: visit(r)
        case S_IFREG: out.append((r, nil))
        default: out.append((r, kind(st.st_mode)))
        }
      }
    }
    visit("")
    return out
  }
}

extension GoExport {
  /// `a symbolic link`, `a FIFO`, ...: what a name is when it is not a regular file.
  static func kind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFREG: "a file"
    case S_IFLNK: "a symbolic link"
    case S_IFDIR: "a directory"
    case S_IFIFO: "a FIFO"
    case S_IFSOCK: "a socket"
    case S_IFCHR: "a character device"
    case S_IFBLK: "a block device"
    default: "not a regular file"
    }
  }
}
