import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

extension TsukuError {
  /// A file refused for what it is: `<what> '<path>': it is a symbolic link; refusing to follow
  /// it`, or `<what> '<path>': it is a FIFO, not a regular file`. Reason `.notRegularFile`.
  public static func notRegular(_ what: String, _ path: String, _ kind: FileIO.Kind, code: Code = .other) -> TsukuError
  {
    let why =
      kind == .symbolicLink
      ? "it is a symbolic link; refusing to follow it"
      : kind == .other
        ? "it is not a regular file" : "it is \(kind), not a regular file"
    return TsukuError(code, "\(what) '\(path)': \(why)", reason: .notRegularFile)
  }

  /// Any error as one line for users: a `TsukuError` as it is; a Foundation file error as
  /// `<what> '<path>': <strerror>` from the `errno` it carries (its own POSIX code, an
  /// underlying one, or the Cocoa code's equivalent), never `NSCocoaErrorDomain error 512`.
  /// `what` and `path` are used when the error names neither.
  public static func converting(_ error: any Error, _ what: String = "cannot complete", _ path: String? = nil)
    -> TsukuError
  {
    if let e = error as? TsukuError { return e }
    let ns = error as NSError
    let where_ = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path ?? path
    if let code = posixCode(ns) {
      if let where_ { return .io(what, where_, errno: code) }
      return TsukuError(.other, "\(what): \(String(cString: strerror(code)))")
    }
    let text = (ns.userInfo[NSLocalizedFailureReasonErrorKey] as? String) ?? "\(error)"
    return TsukuError(.other, where_.map { "\(what) '\($0)': \(text)" } ?? "\(what): \(text)")
  }

  /// The `errno` behind a Foundation error, if it has one.
  private static func posixCode(_ ns: NSError) -> Int32? {
    if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
    if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, let c = posixCode(u) { return c }
    guard ns.domain == NSCocoaErrorDomain else { return nil }
    switch CocoaError.Code(rawValue: ns.code) {
    case .fileNoSuchFile, .fileReadNoSuchFile: return ENOENT
    case .fileReadNoPermission, .fileWriteNoPermission: return EACCES
    case .fileWriteOutOfSpace: return ENOSPC
    case .fileWriteVolumeReadOnly: return EROFS
    case .fileWriteFileExists: return EEXIST
    case .fileReadTooLarge: return EFBIG
    default: return nil
    }
  }
}

extension FileIO {
  /// The folder `path` is in: what is before its last `/` (`/` for a file at the root, empty
  /// for a bare name).
  public static func parentFolder(of path: String) -> String {
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
    return slash == path.utf8.startIndex ? "/" : String(path[..<slash])
  }

  /// Makes folder `path` and any missing parents (`mkdir -p`); a folder made by another
  /// process meanwhile is fine. A failure is `cannot create directory '<folder>': <strerror>`,
  /// naming the folder that could not be made.
  public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
    var st = stat()
    if stat(path, &st) == 0 {
      if st.st_mode & S_IFMT == S_IFDIR { return }
      throw TsukuError.io("cannot create directory", path, errno: EEXIST)
    }
    let parent = (path as NSString).deletingLastPathComponent
    if !parent.isEmpty && parent != path && parent != "/" { try makeDirectories(parent, mode: mode) }
    if mkdir(path, mode) != 0 {
      let e = errno
      if e == EEXIST, stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { return }
      throw TsukuError.io("cannot create directory", path, errno: e)
    }
  }

  /// Removes `path` and, for a folder, everything in it, without following symbolic links (a
  /// link is removed, never what it points to); nothing to do when it does not exist. A
  /// failure is `cannot remove '<the entry that could not be removed>': <strerror>`.
  public static func removeTree(_ path: String) throws {
    var st = stat()
    if lstat(path, &st) != 0 {
      if errno == ENOENT { return }
      throw TsukuError.io("cannot remove", path, errno: errno)
    }
    if st.st_mode & S_IFMT == S_IFDIR {
      guard let dir = opendir(path) else { throw TsukuError.io("cannot remove", path, errno: errno) }
      var names = [String]()
      while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) {
          String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
        }
        if name != "." && name != ".." { names.append(name) }
      }
      closedir(dir)
      for name in names { try removeTree(path + "/" + name) }
      if rmdir(path) != 0 && errno != ENOENT { throw TsukuError.io("cannot remove", path, errno: errno) }
    } else if unlink(path) != 0 && errno != ENOENT {
      throw TsukuError.io("cannot remove", path, errno: errno)
    }
  }
}
