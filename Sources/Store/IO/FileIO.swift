import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The project's file I/O, in one place: files opened close-on-exec, reads and writes carried
/// to the end (short transfers continued, `EINTR` retried), at an offset (`pread`/`pwrite`) or
/// where the file stands. Each call comes in two steps: a raw form that answers with `errno`,
/// and a throwing form whose error is `TsukuError.io(what, path)` (`cannot read '...': ...`).
///
/// Every open goes through one check, so no caller can forget it: only a regular file is
/// opened (a FIFO, socket, device or directory under a file's name is refused at once, never
/// waited on: the open is non-blocking and the descriptor's type is checked before any read),
/// and a file opened for writing is never reached through a symbolic link (`O_NOFOLLOW`: a
/// link planted under the name of a state file cannot redirect the write to its target).
/// Folders on the way may be links (a home on another disk); the last component may not.
public enum FileIO {
  /// Opens `path` with `flags` plus `O_CLOEXEC`: the descriptor, or `-1` with `errno` set.
  /// Only a regular file is opened (see the type's notes); a refusal sets `ELOOP` (a link
  /// where a file is written), `EISDIR` (a folder) or `ENXIO` (anything else). With
  /// `O_DIRECTORY` a folder is opened as asked.
  public static func openRaw(_ path: String, _ flags: Int32, mode: mode_t = 0o644) -> Int32 {
    switch opening(path, flags, mode: mode) {
    case .file(let fd): return fd
    case .failed(let e):
      errno = e
      return -1
    case .refused(let kind):
      errno = kind == .symbolicLink ? ELOOP : kind == .directory ? EISDIR : ENXIO
      return -1
    }
  }

  /// Opens `path` with `flags` plus `O_CLOEXEC`; a failure is `what` `path`. A file refused
  /// for its type is `<what> '<path>': it is a FIFO, not a regular file` (or `it is a symbolic
  /// link; refusing to follow it`), with the code `refused` and the reason `.notRegularFile`.
  public static func open(
    _ path: String, _ flags: Int32, mode: mode_t = 0o644, failing what: String, refused: TsukuError.Code = .other
  ) throws -> Int32 {
    switch opening(path, flags, mode: mode) {
    case .file(let fd): return fd
    case .failed(let e): throw TsukuError.io(what, path, errno: e)
    case .refused(let kind): throw TsukuError.notRegular(what, path, kind, code: refused)
    }
  }

  /// `open`, or nil when there is no such file (`ENOENT`, or `ENOTDIR` for a path through a
  /// file).
  public static func openIfPresent(
    _ path: String, _ flags: Int32, mode: mode_t = 0o644, failing what: String, refused: TsukuError.Code = .other
  ) throws -> Int32? {
    switch opening(path, flags, mode: mode) {
    case .file(let fd): return fd
    case .failed(let e) where e == ENOENT || e == ENOTDIR: return nil
    case .failed(let e): throw TsukuError.io(what, path, errno: e)
    case .refused(let kind): throw TsukuError.notRegular(what, path, kind, code: refused)
    }
  }

  /// What a name turned out to be when it was not a regular file.
  public enum Kind: Sendable, Equatable, CustomStringConvertible {
    case symbolicLink, directory, fifo, socket, characterDevice, blockDevice, other

    init(mode: mode_t) {
      switch mode & S_IFMT {
      case S_IFLNK: self = .symbolicLink
      case S_IFDIR: self = .directory
      case S_IFIFO: self = .fifo
      case S_IFSOCK: self = .socket
      case S_IFCHR: self = .characterDevice
      case S_IFBLK: self = .blockDevice
      default: self = .other
      }
    }

    /// `a FIFO`, `a symbolic link`, ...
    public var description: String {
      switch self {
      case .symbolicLink: "a symbolic link"
      case .directory: "a directory"
      case .fifo: "a FIFO"
      case .socket: "a socket"
      case .characterDevice: "a character device"
      case .blockDevice: "a block device"
      case .other: "not a regular file"
      }
    }
  }

  enum Opening {
    case file(Int32)
    case failed(Int32)
    case refused(Kind)
  }

  /// The one open: non-blocking (a FIFO with no writer would otherwise wait forever),
  /// `O_NOFOLLOW` when writing, then `fstat`: anything but a regular file is closed again
  /// before a byte moves. `O_NONBLOCK` is then cleared unless the caller asked for it.
  static func opening(_ path: String, _ flags: Int32, mode: mode_t) -> Opening {
    if flags & O_DIRECTORY != 0 {
      let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
      return fd >= 0 ? .file(fd) : .failed(errno)
    }
    let writing = flags & (O_WRONLY | O_RDWR | O_CREAT | O_APPEND | O_TRUNC) != 0
    let fd = Glibc.open(path, flags | O_CLOEXEC | O_NONBLOCK | (writing ? O_NOFOLLOW : 0), mode)
    if fd < 0 {
      let e = errno
      // ELOOP: the last component is a link (O_NOFOLLOW); EISDIR: a folder opened to write;
      // ENXIO: a FIFO with no reader opened to write, or a socket. Name what the file is.
      if e == ELOOP || e == EISDIR || e == ENXIO {
        var st = stat()
        let found = (writing ? lstat(path, &st) : stat(path, &st)) == 0
        if found && st.st_mode & S_IFMT != S_IFREG { return .refused(Kind(mode: st.st_mode)) }
      }
      return .failed(e)
    }
    var st = stat()
    if fstat(fd, &st) != 0 {
      let e = errno
      close(fd)
      return .failed(e)
    }
    if st.st_mode & S_IFMT != S_IFREG {
      close(fd)
      return .refused(Kind(mode: st.st_mode))
    }
    if flags & O_NONBLOCK == 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
    return .file(fd)
  }

  /// The size of the open file `fd`; a failure is `cannot stat` `path`.
  public static func size(_ fd: Int32, _ path: String) throws -> Int {
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw TsukuError.io("cannot stat", path, errno: errno) }
    return Int(st.st_size)
  }

  /// Reads until `buffer` is full or the file ends (at `offset`, else where it stands).
  /// Returns the bytes read and 0, or what was read before a failure and its `errno`.
  public static func readRaw(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int? = nil) -> (
    count: Int, errno: Int32
  ) {
    var got = 0
    while got < buffer.count {
      let p = buffer.baseAddress! + got
      let n = offset.map { pread(fd, p, buffer.count - got, off_t($0 + got)) } ?? Glibc.read(fd, p, buffer.count - got)
      if n < 0 {
        if errno == EINTR { continue }
        return (got, errno)
      }
      if n == 0 { break }
      got += n
    }
    return (got, 0)
  }

  /// Reads until `buffer` is full or the file ends; returns the bytes read (fewer at the end
  /// of the file). A failure is `what` `path`.
  @discardableResult
  public static func read(
    _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int? = nil, _ path: String,
    failing what: String = "cannot read"
  ) throws -> Int {
    let (count, e) = readRaw(fd, into: buffer, at: offset)
    if e != 0 { throw TsukuError.io(what, path, errno: e) }
    return count
  }

  /// `read` into the first `count` bytes of `buffer` (all of it when nil).
  @discardableResult
  public static func read(
    _ fd: Int32, _ buffer: inout [UInt8], at offset: Int? = nil, count: Int? = nil, _ path: String,
    failing what: String = "cannot read"
  ) throws -> Int {
    let want = count ?? buffer.count
    return try buffer.withUnsafeMutableBytes {
      try read(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: offset, path, failing: what)
    }
  }

  /// Up to `count` bytes (fewer if the file ends first).
  public static func read(
    _ fd: Int32, count: Int, at offset: Int? = nil, _ path: String, failing what: String = "cannot read"
  ) throws -> Data {
    var data = Data(count: count)
    let got = try data.withUnsafeMutableBytes { try read(fd, into: $0, at: offset, path, failing: what) }
    if got < count { data.count = got }
    return data
  }

  /// Writes all of `bytes` (at `offset`, else where the file stands); 0, or the `errno` of
  /// the failure.
  public static func writeRaw(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil) -> Int32 {
    var done = 0
    while done < bytes.count {
      let p = bytes.baseAddress! + done
      let n = offset.map { pwrite(fd, p, bytes.count - done, off_t($0 + done)) } ?? Glibc.write(fd, p, bytes.count - done)
      if n < 0 {
        if errno == EINTR { continue }
        return errno
      }
      if n == 0 { return EIO }
      done += n
    }
    return 0
  }

  /// Writes all of `bytes`; a failure is `what` `path`.
  public static func write(
    _ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil, _ path: String,
    failing what: String = "cannot write"
  ) throws {
    let e = writeRaw(fd, bytes, at: offset)
    if e != 0 { throw TsukuError.io(what, path, errno: e) }
  }

  public static func write(
    _ fd: Int32, _ bytes: [UInt8], at offset: Int? = nil, _ path: String, failing what: String = "cannot write"
  ) throws {
    try bytes.withUnsafeBytes { try write(fd, $0, at: offset, path, failing: what) }
  }

  public static func write(
    _ fd: Int32, _ data: Data, at offset: Int? = nil, _ path: String, failing what: String = "cannot write"
  ) throws {
    try data.withUnsafeBytes { try write(fd, $0, at: offset, path, failing: what) }
  }

  /// The whole file at `path` (opened, measured, read); `cannot read`/`cannot stat` `path`.
  public static func readFile(_ path: String) throws -> Data {
    let fd = try open(path, O_RDONLY, failing: "cannot read")
    defer { close(fd) }
    return try read(fd, count: try size(fd, path), path)
  }

  /// The whole file at `path`, or nil when there is none (`ENOENT`, `ENOTDIR`); any other
  /// failure, a file that is not regular included, throws (`cannot read '<path>': ...`).
  public static func readFileIfPresent(_ path: String) throws -> Data? {
    guard let fd = try openIfPresent(path, O_RDONLY, failing: "cannot read") else { return nil }
    defer { close(fd) }
    return try read(fd, count: try size(fd, path), path)
  }

  /// The names in folder `dir` (without `.` and `..`, unsorted), or nil when it cannot be
  /// read. What FileManager's `contentsOfDirectory` gives, without its first-use cost on the
  /// read path of every command.
  public static func names(in dir: String) -> [String]? {
    guard let d = opendir(dir) else { return nil }
    defer { closedir(d) }
    var out = [String]()
    while let e = readdir(d) {
      let name = withUnsafePointer(to: e.pointee.d_name) {
        $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
      }
      if name != "." && name != ".." { out.append(name) }
    }
    return out
  }

  /// `flock(fd, op)`, `EINTR` retried: 0, or the `errno` of the failure.
  public static func lockRaw(_ fd: Int32, _ op: Int32) -> Int32 {
    while flock(fd, op) != 0 {
      if errno != EINTR { return errno }
    }
    return 0
  }

  /// Makes the entries of folder `dir` durable (after a rename into it). Best effort: a
  /// folder that cannot be opened or synced is left as it is.
  public static func syncFolder(_ dir: String) {
    let fd = openRaw(dir, O_RDONLY | O_DIRECTORY)
    if fd >= 0 {
      fsync(fd)
      close(fd)
    }
  }
}
