import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// What one sync added to this home, as one `receive` line of the audit log: the source, the
/// index version, the time and every blob received (packs included), each as `HEX KIND[ NAME]`
/// (`KIND` is `recipe`, `golden` or `index`; `NAME` the recipe name, or `NAME VERSION
/// PLATFORM` for a golden file). Up to `inlineLimit` blobs are listed in the line itself;
/// past that they are written, as they come, to a side file staged under the home and moved
/// into the log's side folder when the log is written, so a sync of 100,000 recipes is still
/// one line and never holds its list in memory.
public final class AuditReceipt {
  /// The most blobs listed in the line itself.
  public static let inlineLimit = 64
  static let bufferBytes = 1 << 20

  private var event: AuditEvent
  private let home: Home
  private var inline = [String]()
  private var count = 0
  private var buffer = Data()
  private var stagedFD: Int32 = -1
  private var stagedPath: String?
  private var stagedBytes = 0
  private var failed = false

  /// What the audit log writes: the line, and the side file it names.
  struct Finished {
    var event: AuditEvent
    var sideFile: (name: String, path: String, bytes: Int)?
  }

  public init(home: Home, time: Date, source: String, indexVersion: Int, sourceCommit: String?) {
    self.home = home
    event = AuditEvent("receive", time: time, source: source, indexVersion: indexVersion, sourceCommit: sourceCommit)
  }

  deinit {
    if stagedFD >= 0 { close(stagedFD) }
    if let stagedPath { unlink(stagedPath) }
  }

  /// One blob received. A side file that cannot be written loses the list, not the line: the
  /// line then says so in `detail`.
  public func add(_ id: ObjectID, kind: BlobKind, name: String?) {
    var line = id.hex + " " + kind.rawValue
    if let name { line += " " + name.replacingOccurrences(of: "\n", with: " ") }
    count += 1
    if stagedPath == nil, !failed, inline.count < Self.inlineLimit {
      inline.append(line)
      return
    }
    if failed { return }
    if stagedPath == nil { stage() }
    buffer += Data((line + "\n").utf8)
    if buffer.count >= Self.bufferBytes { writeBuffer() }
  }

  private func stage() {
    let path = home.auditLogPath + ".staging-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    guard (try? FileIO.makeDirectories(home.path)) != nil,
      let fd = try? FileIO.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600, failing: "cannot write") else {
      failed = true
      return
    }
    (stagedFD, stagedPath) = (fd, path)
    for l in inline { buffer += Data((l + "\n").utf8) }
    inline.removeAll()
  }

  private func writeBuffer() {
    guard stagedFD >= 0, !buffer.isEmpty else { return }
    if buffer.withUnsafeBytes({ FileIO.writeRaw(stagedFD, $0) }) != 0 { failed = true }
    stagedBytes += buffer.count
    buffer.removeAll(keepingCapacity: true)
  }

  /// The line and its side file; the receipt gives its staged file up to the log.
  func finish() -> Finished {
    writeBuffer()
    if stagedFD >= 0 {
      fsync(stagedFD)
      close(stagedFD)
      stagedFD = -1
    }
    event.count = count
    if failed {
      event.detail = "the list of blobs could not be written"
      return Finished(event: event, sideFile: nil)
    }
    guard let path = stagedPath else {
      event.blobs = inline
      return Finished(event: event, sideFile: nil)
    }
    stagedPath = nil
    let stamp = event.time.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
    let name = "receive-\(stamp)-v\(event.index_version ?? 0)-\(path.split(separator: "-").last ?? "0").txt"
    event.blobs_file = name
    return Finished(event: event, sideFile: (name, path, stagedBytes))
  }
}

extension AuditLog {
  /// Records what a sync received: one line (see `AuditReceipt`).
  public func record(_ receipt: AuditReceipt) { record(receipt.finish()) }
}
