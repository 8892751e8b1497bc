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
public enum FileIO {
  /// Opens `path` with `flags` plus `O_CLOEXEC`; the descriptor, or `-1` with `errno` set.
  public static func openRaw(_ path: String, _ flags: Int32, mode: mode_t = 0o644) -> Int32 {
    Glibc.open(path, flags | O_CLOEXEC, mode)
  }

  /// Opens `path` with `flags` plus `O_CLOEXEC`; a failure is `what` `path`.
  public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644, failing what: String) throws -> Int32 {
    let fd = openRaw(path, flags, mode: mode)
    if fd < 0 { throw TsukuError.io(what, path, errno: errno) }
    return fd
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
