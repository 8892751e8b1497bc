import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// One line of `$TSUKU_HOME/store-audit.log`. It never holds a secret: names, hashes, source URLs
/// (as configured, with any userinfo removed), versions and reasons only.
public struct AuditEvent: Codable, Sendable, Equatable {
  /// `receive`, `fetch`, `cache_hit`, `verify_failure`, `revoked`, `trust_change`.
  public var event: String
  public var time: String
  public var name: String?
  public var sha256: String?
  public var source: String?
  public var index_version: Int?
  public var source_commit: String?
  public var age_seconds: Int?
  public var detail: String?
  /// `fetch` and `cache_hit`: what the blob is (`recipe`, `golden`, `index`).
  public var kind: String?
  /// `receive`: how many blobs the sync added.
  public var count: Int?
  /// `receive` of a few blobs: each as `HEX KIND[ NAME]` (see `AuditReceipt`).
  public var blobs: [String]?
  /// `receive` of more: the file in the log's side folder (`store-audit.log.d/`) holding those
  /// lines.
  public var blobs_file: String?

  public init(
    _ event: String, time: Date, name: String? = nil, sha256: ObjectID? = nil, source: String? = nil,
    indexVersion: Int? = nil, sourceCommit: String? = nil, ageSeconds: Int? = nil, detail: String? = nil,
    kind: BlobKind? = nil
  ) {
    self.event = event
    self.time = Timestamp.format(time)
    self.name = name
    self.sha256 = sha256?.hex
    self.source = source.map(AuditLog.redact)
    index_version = indexVersion
    source_commit = sourceCommit
    age_seconds = ageSeconds
    self.detail = detail
    self.kind = kind?.rawValue
  }
}

extension AuditEvent {
  /// The event as one line of the log: what `JSON.encode` writes for it, and a line break.
  var jsonLine: Data {
    var j = JSONLine()
    j.add("age_seconds", age_seconds)
    j.add("blobs", blobs)
    j.add("blobs_file", blobs_file)
    j.add("count", count)
    j.add("detail", detail)
    j.add("event", event)
    j.add("index_version", index_version)
    j.add("kind", kind)
    j.add("name", name)
    j.add("sha256", sha256)
    j.add("source", source)
    j.add("source_commit", source_commit)
    j.add("time", time)
    return j.line
  }
}

/// The append-only audit log: JSON lines, rotated by size (`store-audit.log`, `store-audit.log.1`,
/// ...). It used to be `audit.log`, the name the Go tsuku client appends its own lines to: the
/// first write under the new name moves this program's rotated files and side folders over and
/// copies its own lines out of `audit.log` (which is left as it is); until then `read` reads
/// the old files, skipping the Go client's lines.
/// Events are buffered and written with one append per command, so recording a read costs no
/// synchronous write of its own. A sync's `receive` record that names many blobs keeps them in
/// a side file of the log's folder (`store-audit.log.d/`, rotated with the log:
/// `store-audit.log.1.d/`, ...), and that file counts toward the log's size, so the bound holds
/// whatever the syncs add: each generation rotates past `maxBytes`, and the history stays
/// within `(keep + 1) * maxBytes`.
public final class AuditLog: @unchecked Sendable {
  public let path: String
  /// The old name (`audit.log`), shared with the Go client.
  let legacyPath: String
  public let maxBytes: Int
  public let keep: Int
  private var pending = [AuditEvent]()
  /// Side files staged by receipts, moved into the side folder by `flush` (name, staged path, size).
  private var staged = [(name: String, path: String, bytes: Int)]()

  public init(home: Home, maxBytes: Int = 10 * 1024 * 1024, keep: Int = 3) {
    path = home.auditLogPath
    legacyPath = home.legacyAuditLogPath
    self.maxBytes = maxBytes
    self.keep = keep
  }

  public func record(_ e: AuditEvent) { pending.append(e) }

  /// A finished receipt: its line, and its side file when it has one.
  func record(_ r: AuditReceipt.Finished) {
    if let f = r.sideFile { staged.append((f.name, f.path, f.bytes)) }
    pending.append(r.event)
  }

  /// The side folder of the log file `file` (`store-audit.log.1` -> `store-audit.log.1.d`).
  static func sideFolder(of file: String) -> String { file + ".d" }

  /// Appends the buffered events (one `write` under an exclusive lock), rotating first when
  /// the log and its side files would grow past `maxBytes`; staged side files are moved into
  /// the side folder before the line that names them is written.
  public func flush() throws {
    guard !pending.isEmpty else { return }
    var text = Data()
    for e in pending { text += e.jsonLine }
    pending.removeAll()
    let side = staged
    staged.removeAll()
    defer { for f in side { unlink(f.path) } }
    try FileIO.makeDirectories(FileIO.parentFolder(of: path))
    // The lock of the file now under the log's name: its line and its side files then go to
    // one generation, even when another process rotated the file this one had opened.
    var fd = try openCurrentLocked()
    defer {
      flock(fd, LOCK_UN)
      close(fd)
    }
    var st = stat()
    // The first write under the current name (not a file a rotation just emptied).
    var first = stat()
    if fstat(fd, &st) == 0, st.st_size == 0, lstat(path + ".1", &first) != 0 { migrateLegacy(into: fd) }
    let adding = text.count + side.reduce(0) { $0 + $1.bytes }
    if fstat(fd, &st) == 0, st.st_size > 0, Int(st.st_size) + Self.folderBytes(Self.sideFolder(of: path)) + adding > maxBytes {
      rotate()
      // The rotated file stays locked until the new one is: a process waiting on it finds it
      // renamed and opens the new one.
      let rotated = fd
      fd = try openCurrentLocked()
      flock(rotated, LOCK_UN)
      close(rotated)
    }
    if !side.isEmpty {
      removeAbandonedStaging()
      let folder = Self.sideFolder(of: path)
      try FileIO.makeDirectories(folder, mode: 0o700)
      for f in side where rename(f.path, folder + "/" + f.name) != 0 {
        throw TsukuError(.other, "cannot write audit log '\(folder)/\(f.name)': \(String(cString: strerror(errno)))")
      }
    }
    let n = text.withUnsafeBytes { FileIO.writeRaw(fd, $0) }
    if n != 0 { throw TsukuError(.other, "cannot write audit log '\(path)': \(String(cString: strerror(n)))") }
    if !side.isEmpty { keepWithinTotal() }
  }

  /// Opens the log file under its name (never through a symbolic link, only a regular file:
  /// `FileIO.open`) and locks it exclusively; when the file locked is no longer the one under
  /// the name (another process rotated it while this one waited for the lock), it lets go and
  /// opens the name again. A line and its side files are written under the lock of the
  /// current file only, so they always land in one generation.
  private func openCurrentLocked() throws -> Int32 {
    while true {
      let fd = try FileIO.open(path, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600, failing: "cannot write audit log")
      flock(fd, LOCK_EX)
      var held = stat()
      var named = stat()
      if fstat(fd, &held) == 0, lstat(path, &named) == 0, held.st_dev == named.st_dev, held.st_ino == named.st_ino {
        return fd
      }
      flock(fd, LOCK_UN)
      close(fd)
    }
  }

  /// A receipt larger than `maxBytes` makes a generation of its own, past the per-file bound;
  /// the whole history still stays within `(keep + 1) * maxBytes` (what the rotated files
  /// allow): the oldest generations are dropped until it does. The current one always stays.
  private func keepWithinTotal() {
    let sizes = files.map { f -> Int in
      var st = stat()
      return (stat(f, &st) == 0 ? Int(st.st_size) : 0) + Self.folderBytes(Self.sideFolder(of: f))
    }
    var total = sizes.reduce(0, +)
    for (f, size) in zip(files, sizes).dropLast() where total > (keep + 1) * maxBytes && size > 0 {
      unlink(f)
      try? FileManager.default.removeItem(atPath: Self.sideFolder(of: f))
      total -= size
    }
  }

  /// Removes side files staged by commands that died before writing the log (their process is
  /// gone), so a crash mid-sync leaves nothing behind for long.
  private func removeAbandonedStaging() {
    let dir = (path as NSString).deletingLastPathComponent
    let prefix = (path as NSString).lastPathComponent + ".staging-"
    for n in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where n.hasPrefix(prefix) {
      guard let pid = Int32(n.dropFirst(prefix.count).split(separator: "-").first ?? "") else { continue }
      if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH { unlink(dir + "/" + n) }
    }
  }

  /// The bytes of the files in `folder` (0 when there is none).
  static func folderBytes(_ folder: String) -> Int {
    guard let names = FileIO.names(in: folder) else { return 0 }
    var total = 0
    for n in names {
      var st = stat()
      if lstat(folder + "/" + n, &st) == 0 { total += Int(st.st_size) }
    }
    return total
  }

  private func rotate() {
    let fm = FileManager.default
    unlink("\(path).\(keep)")
    try? fm.removeItem(atPath: Self.sideFolder(of: "\(path).\(keep)"))
    for i in stride(from: keep - 1, through: 1, by: -1) {
      rename("\(path).\(i)", "\(path).\(i + 1)")
      rename(Self.sideFolder(of: "\(path).\(i)"), Self.sideFolder(of: "\(path).\(i + 1)"))
    }
    rename(path, "\(path).1")
    rename(Self.sideFolder(of: path), Self.sideFolder(of: "\(path).1"))
  }

  /// The log's files, oldest first: the rotated ones, then the current one. Before the first
  /// write under the current name, the files under the old one.
  public var files: [String] {
    var st = stat()
    let current = lstat(path, &st) == 0 || lstat(path + ".1", &st) == 0 ? path : legacyPath
    return stride(from: keep, through: 1, by: -1).map { "\(current).\($0)" } + [current]
  }

  /// Moves the history written under the old name to the current one, once (the current file
  /// is still empty, and its lock is held): the rotated files and side folders (only ever this
  /// program's) are renamed, and this program's lines of `audit.log` are copied, oldest
  /// first, ahead of the new ones. The Go client's lines (they do not decode as an event) stay
  /// where they are, and `audit.log` itself is never changed.
  private func migrateLegacy(into fd: Int32) {
    var st = stat()
    guard lstat(legacyPath, &st) == 0 || lstat(legacyPath + ".1", &st) == 0 else { return }
    for i in 1...max(keep, 1) where lstat("\(path).\(i)", &st) != 0 {
      rename("\(legacyPath).\(i)", "\(path).\(i)")
      rename(Self.sideFolder(of: "\(legacyPath).\(i)"), Self.sideFolder(of: "\(path).\(i)"))
    }
    if lstat(Self.sideFolder(of: path), &st) != 0 { rename(Self.sideFolder(of: legacyPath), Self.sideFolder(of: path)) }
    var ours = Data()
    let dec = JSONDecoder()
    // A FIFO under the old name is not waited on (`LineReader` opens regular files only).
    LineReader.forEachLine(legacyPath) { line in
      if (try? dec.decode(AuditEvent.self, from: line)) != nil { ours += line + Data("\n".utf8) }
    }
    if !ours.isEmpty { _ = ours.withUnsafeBytes { FileIO.writeRaw(fd, $0) } }
  }

  /// Every event, oldest first, from the rotated files and the current one (streamed: a file
  /// is never held whole).
  public func read(since: Date? = nil, name: String? = nil) -> [AuditEvent] {
    var out = [AuditEvent]()
    forEachEvent(since: since) { e, _ in
      if let name, e.name != name { return }
      out.append(e)
    }
    return out
  }

  /// Calls `body` with every event that parses, oldest first, and the log file it is in.
  /// `matching`, when given, is checked on the raw line first: a line that fails it is not
  /// decoded.
  func forEachEvent(
    since: Date? = nil, matching: ((Data) -> Bool)? = nil, _ body: (AuditEvent, String) throws -> Void
  ) rethrows {
    let dec = JSONDecoder()
    for f in files {
      try LineReader.forEachLine(f) { line in
        if let matching, !matching(line) { return }
        guard let e = try? dec.decode(AuditEvent.self, from: line) else { return }
        if let since, let t = Timestamp.parse(e.time), t < since { return }
        try body(e, f)
      }
    }
  }

  /// Removes any `user:password@` part of a URL.
  static func redact(_ url: String) -> String {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
    let slash = url[scheme.upperBound...].firstIndex(of: "/") ?? url.endIndex
    if at < slash { return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...]) }
    return url
  }
}
