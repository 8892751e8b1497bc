import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An unnamed temporary file that blobs are appended to and read back from, so bytes made
/// during a publish (the index shards) need not stay in memory. It is unlinked as soon as it
/// is made: nothing is left behind, whatever happens to the process.
public final class SpillFile: Sendable {
  private let fd: Int32
  private let end = Mutex(0)
  /// The folder it was made in, for messages.
  public let path: String

  public init(in directory: String = NSTemporaryDirectory()) throws {
    var dir = directory
    while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
    let name = "\(dir)/.tsuku-spill-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = FileIO.openRaw(name, O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
    if fd < 0 { throw TsukuError.io("cannot create a temporary file in", dir, errno: errno) }
    unlink(name)
    self.fd = fd
    self.path = dir
  }

  deinit { close(fd) }

  /// Appends `data` and returns a source that reads it back.
  public func append(_ data: Data) throws -> BlobSource {
    try end.withLock { end in
      try FileIO.write(fd, data, at: end, path, failing: "cannot write a temporary file in")
      let source = BlobSource(id: SHA256.hash(data), size: data.count, from: .spill(self, offset: end))
      end += data.count
      return source
    }
  }

  func read(at offset: Int, count: Int) throws -> Data {
    try FileIO.read(fd, count: count, at: offset, path, failing: "cannot read a temporary file in")
  }
}
