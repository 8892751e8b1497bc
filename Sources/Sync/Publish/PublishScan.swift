import Dispatch
import Foundation
import Store
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The validated content of a publish: index entries and the files their blobs are read from.
public struct PublishScan: Sendable {
  /// What a scan does with a file publish refuses.
  public enum Mode: Sendable {
    /// Throw the first refusal in path order (what `registry publish` does: nothing is written).
    case stopAtFirstRefusal
    /// Leave each refused file out, list it in `refused` and go on (`tsuku-dev scan`).
    case reportRefusals
  }

  /// A file publish refuses: its path (as the scan names it: the folder given, then the path
  /// inside it) and why, in one line.
  public struct Refusal: Sendable, Codable, Equatable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
      self.path = path
      self.reason = reason
    }
  }

  public var entries: [IndexEntry] = []
  /// Every blob of the input, once each, in the order the files were read: a source that reads
  /// its file when it is written. Bytes are hashed while scanning, not kept.
  public var blobs: [BlobSource] = []
  /// Files that are neither recipes nor golden files (a README, discovery JSON), skipped.
  public var skipped: [String] = []
  public var goldenCount = 0
  /// The first golden files whose plan disagrees with their name (indexed by the name), at
  /// most `keptNotes`; `noteCount` counts them all.
  public var notes: [String] = []
  public var noteCount = 0
  public static let keptNotes = 5
  /// With `reportRefusals`: every refused file, in the order the scan met them (critical set,
  /// community set, golden files; path order within each).
  public var refused: [Refusal] = []
  /// With `reportRefusals`: every file kept (each recipe and golden file the entries name,
  /// copies of the same bytes included), named as in `refused`, in the same order.
  public var accepted: [String] = []
  public var criticalCount: Int { entries.filter { $0.category == .critical }.count }
}

extension Publisher {
  /// What one input file says, once read and validated.
  private enum Checked: Sendable {
    case recipe(RecipeInfo, BlobRef)
    case golden(GoldenInfo, BlobRef)
  }

  /// Files validated in parallel per chunk: the most results held at once.
  static let scanChunk = 4096

  /// Reads and validates every file; nothing is written. By default throws on the first bad
  /// file, naming it; with `.reportRefusals` leaves each bad file out and lists it instead.
  ///
  /// Files are read, validated and hashed on every core, a chunk of files at a time, one file
  /// per core at once; only names, sizes, paths (in one buffer per folder) and metadata are
  /// kept. Each chunk's results are taken in path order, so the error for a bad input is the
  /// one a file-by-file pass gives.
  public static func scan(_ input: PublishInput, mode: PublishScan.Mode = .stopAtFirstRefusal) throws -> PublishScan {
    var scan = PublishScan()
    let reporting = mode == .reportRefusals
    /// A refused file: thrown, or listed with the message less the leading file name the
    /// validators put first (the path, or the file name alone).
    func refuse(_ path: String, _ error: any Error) throws {
      guard reporting else { throw error }
      var reason = (error as? TsukuError)?.message ?? "\(error)"
      let fileName = String(path.split(separator: "/").last ?? "")
      for name in [displayLine(path), displayLine(fileName), path] where reason.hasPrefix(name + ": ") {
        reason.removeFirst(name.count + 2)
        break
      }
      scan.refused.append(PublishScan.Refusal(path: path, reason: reason))
    }
    // The entries in one array (a name maps to its position), grown once per folder.
    var entries = [IndexEntry]()
    var byName = [String: Int]()
    for (dir, category) in [(input.critical, Category.critical), (input.recipes, .community)] {
      guard let dir else { continue }
      let (table, work) = try candidates(in: dir, skipped: &scan.skipped) { rel in
        let parts = rel.split(separator: "/")
        return rel.hasSuffix(".toml") && (parts.count == 1 || (parts.count == 2 && parts[0].count == 1))
      }
      entries.reserveCapacity(entries.count + work.count)
      byName.reserveCapacity(entries.count + work.count)
      // Room for the shards and packs a publish adds to the same list (see `publish`).
      scan.blobs.reserveCapacity(scan.blobs.count + work.count + work.count / 16 + 1024)
      try check(table, work, golden: false, stopAtFirst: !reporting, refuse: { try refuse(table.path($0), $1) }) {
        i, checked in
        guard case .recipe(let info, let ref) = checked else { return }
        let path = table.path(i)
        if let other = byName[info.name] {
          return try refuse(
            path,
            TsukuError(.usage, "\(path): recipe '\(info.name)' is also in the \(entries[other].category.rawValue) set"))
        }
        scan.blobs.append(.file(table, i, id: ref.sha256, size: ref.size))
        if reporting { scan.accepted.append(path) }
        byName[info.name] = entries.count
        entries.append(
          IndexEntry(
            name: info.name, category: category, recipe: ref, golden: [], description: info.description,
            homepage: info.homepage, type: info.type, dependencies: info.dependencies,
            runtime_dependencies: info.runtimeDependencies, source_commit: nil))
      }
    }
    if let dir = input.golden {
      let (table, work) = try candidates(in: dir, skipped: &scan.skipped) { rel in
        let parts = rel.split(separator: "/")
        return rel.hasSuffix(".json") && parts.count >= 2 && parts.last!.hasPrefix("v")
      }
      // Room for the shards and packs a publish adds to the same list (see `publish`).
      scan.blobs.reserveCapacity(scan.blobs.count + work.count + work.count / 16 + 1024)
      try check(table, work, golden: true, stopAtFirst: !reporting, refuse: { try refuse(table.path($0), $1) }) {
        i, checked in
        guard case .golden(let info, let ref) = checked else { return }
        let path = table.path(i)
        if let note = info.note {
          if scan.notes.count < PublishScan.keptNotes { scan.notes.append(note) }
          scan.noteCount += 1
        }
        guard let k = byName[info.tool] else {
          // Reporting, the recipe may have been refused: then it has none that is valid.
          let recipe = reporting ? "valid recipe" : "recipe"
          return try refuse(path, TsukuError(.usage, "\(path): golden file for '\(info.tool)', which has no \(recipe)"))
        }
        if entries[k].golden.contains(where: { $0.platform == info.platform && $0.version == info.version }) {
          let what = "'\(info.tool)' \(info.version) on \(info.platform)"
          return try refuse(path, TsukuError(.usage, "\(path): a second golden file for \(what)"))
        }
        scan.blobs.append(.file(table, i, id: ref.sha256, size: ref.size))
        if reporting { scan.accepted.append(path) }
        entries[k].golden.append(
          GoldenRef(platform: info.platform, version: info.version, sha256: ref.sha256, size: ref.size))
        scan.goldenCount += 1
      }
    }
    byName = [:]
    // Files with the same bytes are one blob: the first copy stays (sorting positions, not a set).
    let unique = firstCopies(scan.blobs)
    if unique.count < scan.blobs.count {
      var w = 0
      for r in unique.map({ Int($0) }) {
        scan.blobs.swapAt(w, r)
        w += 1
      }
      scan.blobs.removeLast(scan.blobs.count - w)
    }
    for i in entries.indices { entries[i].golden.sort { ($0.platform, $0.version) < ($1.platform, $1.version) } }
    entries.sort { $0.name < $1.name }
    scan.entries = entries
    return scan
  }

  /// The files under `dir` in path order: the positions of those `isCandidate` accepts (to be
  /// validated), the others added to `skipped` as `dir/relative path`.
  private static func candidates(
    in dir: String, skipped: inout [String], _ isCandidate: (String) -> Bool
  ) throws -> (PathTable, [Int32]) {
    let table = try files(in: dir)
    var work = [Int32]()
    for i in table.sortedIndices() {
      let rel = table.relative(i)
      if isCandidate(rel) { work.append(i) } else { skipped.append(dir + "/" + rel) }
    }
    return (table, work)
  }

  /// Reads, validates and hashes the files of `table` at the positions `work` on every core,
  /// `scanChunk` at a time, and hands each result in order to `take`, or its failure to
  /// `refuse`. With `stopAtFirst`, nothing past a chunk's first failure is read: `refuse` is
  /// expected to throw it.
  private static func check(
    _ table: PathTable, _ work: [Int32], golden: Bool, stopAtFirst: Bool, refuse: (Int32, any Error) throws -> Void,
    _ take: (Int32, Checked) throws -> Void
  ) throws {
    var start = 0
    while start < work.count {
      let chunk = Array(work[start..<min(start + scanChunk, work.count)])
      let firstFailure = Atomic<Int>(Int.max)
      let done = ParallelMap.map(chunk.count) { i -> Result<Checked, any Error>? in
        // Past a failure nothing more is needed: it is thrown before any later result is read.
        if i > firstFailure.load(ordering: .relaxed) { return nil }
        let rel = table.relative(chunk[i])
        let path = table.base + "/" + rel
        let r = Result<Checked, any Error> {
          let data = try read(path)
          if golden { return .golden(try GoldenFile.validate(data, path: path), BlobRef(of: data)) }
          let info = try RecipeFile.validate(data, fileName: String(rel.split(separator: "/").last!))
          try RecipeName.validate(info.name)
          return .recipe(info, BlobRef(of: data))
        }
        if stopAtFirst, case .failure = r { firstFailure.min(i, ordering: .relaxed) }
        return r
      }
      for (i, index) in chunk.enumerated() {
        switch done[i] {
        case .success(let checked): try take(index, checked)
        case .failure(let error): try refuse(index, error)
        case nil: return  // past a failure that stopped the scan (`refuse` threw it)
        }
      }
      start += chunk.count
    }
  }

  /// Every file under `dir` (not directories; a symbolic link counts as what it points to,
  /// and a link to a directory is not followed), as paths relative to `dir` in one table (in
  /// the order found; `sortedIndices` orders them); files whose name starts with "." are left
  /// out.
  private static func files(in dir: String) throws -> PathTable {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
      throw TsukuError(.usage, "'\(dir)' is not a directory")
    }
    let out = PathTable(base: dir)
    walk(dir, "", into: out)
    return out
  }

  private static func walk(_ path: String, _ prefix: String, into out: PathTable) {
    guard let d = opendir(path) else { return }
    defer { closedir(d) }
    while let e = readdir(d) {
      let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name == "." || name == ".." { continue }
      let full = path + "/" + name
      let rel = prefix.isEmpty ? name : prefix + "/" + name
      var type = Int32(e.pointee.d_type)
      if type == Int32(DT_UNKNOWN) {
        var st = stat()
        guard lstat(full, &st) == 0 else { continue }
        let mode = st.st_mode & S_IFMT
        type = mode == S_IFDIR ? Int32(DT_DIR) : mode == S_IFLNK ? Int32(DT_LNK) : Int32(DT_REG)
      }
      if type == Int32(DT_DIR) {
        walk(full, rel, into: out)
        continue
      }
      if type == Int32(DT_LNK) {
        var st = stat()
        guard stat(full, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else { continue }
      }
      if !name.hasPrefix(".") { _ = out.add(rel) }
    }
  }

  /// The bytes of an input file, refused above `maxFileSize` before they are read.
  private static func read(_ path: String) throws -> Data {
    let fd = FileIO.openRaw(path, O_RDONLY)
    if fd < 0 { throw TsukuError(.other, "cannot read '\(path)'") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw TsukuError(.other, "cannot read '\(path)'") }
    let size = Int(st.st_size)
    if size > maxFileSize {
      throw TsukuError(.usage, "\(path): \(size) bytes, more than the \(maxFileSize) allowed")
    }
    var data = Data(count: size)
    let (got, e) = data.withUnsafeMutableBytes { FileIO.readRaw(fd, into: $0) }
    guard e == 0 else { throw TsukuError(.other, "cannot read '\(path)'") }
    if got < size { data.count = got }
    return data
  }
}
