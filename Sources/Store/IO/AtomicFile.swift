import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The one atomic writer: a file written under a temporary name (created exclusively, next to
/// where it will live), then, when `durable`, fsynced, renamed into place, and its folder
/// fsynced. Readers see the old file or the new one whole, never a part; without `durable` a
/// crash may lose the change but never leaves a half file under the name. Abandoned (not
/// committed), the temporary file is removed.
///
/// Nothing is written through a symbolic link: the temporary file is created with `O_EXCL`
/// and `O_NOFOLLOW` (`FileIO.openRaw`), so a link planted under its name fails the create,
/// and `rename` replaces whatever has the final name, a link included, never its target.
///
/// Whole files go through `write(_:to:...)`; packs stream into the descriptor and commit under
/// the name their hash gives. `marks` says which steps are `CrashPoint`s, so each writer keeps
/// the crash steps its tests count.
public final class AtomicFile {
  /// The steps of a write that can be `CrashPoint`s.
  public struct Marks: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// `created <temporary>`, once the temporary file exists.
    public static let created = Marks(rawValue: 1)
    /// `wrote <temporary>`, once the bytes are written (before the fsync).
    public static let wrote = Marks(rawValue: 2)
    /// `before renaming <temporary>`, once the file is closed.
    public static let beforeRenaming = Marks(rawValue: 4)
    /// `renamed <path>`, once the file has its name (before the folder's fsync).
    public static let renamed = Marks(rawValue: 8)
  }

  /// How a failure reads: `(what, path, errno)` to an error. By default
  /// `TsukuError.io(what, path)`: `cannot write`, `cannot sync` the temporary file,
  /// `cannot rename into` the final path.
  public typealias Failure = (_ what: String, _ path: String, _ errno: Int32) -> TsukuError

  /// The temporary file's path.
  public let temporary: String
  /// Its descriptor, for writing in place (`FileIO.write(_:_:at:_:)`, `mmap`).
  public let fd: Int32
  private let marks: Marks
  private let failure: Failure
  private var isOpen = true
  private var done = false

  /// Creates `temporary` exclusively with `flags` (`O_WRONLY`, or `O_RDWR` to read back).
  public init(
    temporary: String, flags: Int32 = O_WRONLY, mode: mode_t = 0o644, marks: Marks = [],
    failure: @escaping Failure = { TsukuError.io($0, $1, errno: $2) }
  ) throws {
    let fd = FileIO.openRaw(temporary, flags | O_CREAT | O_EXCL, mode: mode)
    if fd < 0 { throw failure("cannot write", temporary, errno) }
    self.temporary = temporary
    self.fd = fd
    self.marks = marks
    self.failure = failure
    mark(.created, "created \(temporary)")
  }

  deinit { abandon() }

  private func mark(_ step: Marks, _ label: @autoclosure () -> String) {
    if marks.contains(step) { CrashPoint.step(label()) }
  }

  /// Writes all of `bytes` (at `offset`, else where the file stands).
  public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int? = nil) throws {
    let e = FileIO.writeRaw(fd, bytes, at: offset)
    if e != 0 { throw failure("cannot write", temporary, e) }
  }

  public func write(_ bytes: [UInt8], at offset: Int? = nil) throws {
    try bytes.withUnsafeBytes { try write($0, at: offset) }
  }

  /// Finishes the file under `path`: fsync (when `durable`), close, rename, fsync of the
  /// folder (when `durable`). On a failure the temporary file is removed.
  public func commit(as path: String, durable: Bool = true) throws {
    mark(.wrote, "wrote \(temporary)")
    if durable && fsync(fd) != 0 { throw failure("cannot sync", temporary, errno) }
    close(fd)
    isOpen = false
    mark(.beforeRenaming, "before renaming \(temporary)")
    if rename(temporary, path) != 0 { throw failure("cannot rename into", path, errno) }
    done = true
    mark(.renamed, "renamed \(path)")
    if durable { FileIO.syncFolder((path as NSString).deletingLastPathComponent) }
  }

  /// Closes and removes the temporary file, unless it was committed.
  public func abandon() {
    if isOpen {
      close(fd)
      isOpen = false
    }
    if !done {
      unlink(temporary)
      done = true
    }
  }

  /// Writes `data` whole to `path` through `temporary`.
  public static func write(
    _ data: Data, to path: String, temporary: String, mode: mode_t = 0o644, durable: Bool = true, marks: Marks = [],
    failure: @escaping Failure = { TsukuError.io($0, $1, errno: $2) }
  ) throws {
    let file = try AtomicFile(temporary: temporary, mode: mode, marks: marks, failure: failure)
    defer { file.abandon() }
    try data.withUnsafeBytes { try file.write($0) }
    try file.commit(as: path, durable: durable)
  }
}

/// Writes a whole file under a temporary name (`<path>.tmp-<pid>-<random>`), fsyncs it and
/// renames it into place (and fsyncs the folder). With `durable: false` neither fsync is made:
/// readers still see the old or the new file whole, but a crash may lose the change. Every
/// failure reads `cannot write '<path>': <reason>`.
public func writeFileAtomically(_ data: Data, to path: String, mode: mode_t = 0o644, durable: Bool = true) throws {
  try AtomicFile.write(
    data, to: path, temporary: "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", mode: mode,
    durable: durable, marks: [.created, .beforeRenaming]
  ) { _, _, e in TsukuError(.other, "cannot write '\(path)': \(String(cString: strerror(e)))") }
}
