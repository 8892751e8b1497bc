import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Writes a whole file under a temporary name, fsyncs it and renames it into place (and fsyncs
/// the folder). With `durable: false` neither fsync is made: readers still see the old or the
/// new file whole, but a crash may lose the change.
public func writeFileAtomically(_ data: Data, to path: String, mode: mode_t = 0o644, durable: Bool = true) throws {
  let tmp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
  if fd < 0 { throw TsukuError(.other, "cannot write '\(path)': \(String(cString: strerror(errno)))") }
  CrashPoint.step("created \(tmp)")
  let ok = data.withUnsafeBytes { buf -> Bool in
    var off = 0
    while off < buf.count {
      let n = write(fd, buf.baseAddress! + off, buf.count - off)
      if n < 0 { if errno == EINTR { continue } else { return false } }
      off += n
    }
    return !durable || fsync(fd) == 0
  }
  let e = errno
  close(fd)
  CrashPoint.step("before renaming \(tmp)")
  if !ok || rename(tmp, path) != 0 {
    let e2 = ok ? errno : e
    unlink(tmp)
    throw TsukuError(.other, "cannot write '\(path)': \(String(cString: strerror(e2)))")
  }
  if !durable { return }
  let dfd = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
  if dfd >= 0 {
    fsync(dfd)
    close(dfd)
  }
}


