import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// `cache/access.log`: one line per cached blob read (`h` hit or `m` miss, the blob, the time),
/// appended once per command; eviction reads it for each blob's last access.
final class AccessLog: @unchecked Sendable {
  let cacheDir: String
  var path: String { cacheDir + "/access.log" }
  private var pending = [(ObjectID, Bool)]()

  init(cacheDir: String) { self.cacheDir = cacheDir }

  /// Notes a read of `id` from the cache (`hit`) or, after a miss, from a source.
  func note(_ id: ObjectID, hit: Bool) { pending.append((id, hit)) }

  /// Appends the reads of this command, stamped `now` (one write); nothing when the cache
  /// folder does not exist. Never through a symbolic link, only to a regular file
  /// (`FileIO.open`): such a refusal is thrown (the caller warns), any other failure loses
  /// the lines quietly (eviction then sees older times).
  func flush(now: Date) throws {
    var st = stat()
    guard !pending.isEmpty, stat(cacheDir, &st) == 0 else { return }
    let t = Int(now.timeIntervalSince1970)
    var text = ""
    for (id, hit) in pending { text += "\(hit ? "h" : "m") \(id.hex) \(t)\n" }
    pending.removeAll()
    let fd: Int32
    do {
      fd = try FileIO.open(path, O_WRONLY | O_APPEND | O_CREAT, failing: "cannot write")
    } catch let e as TsukuError where e.reason != .notRegularFile {
      return  // a cache that cannot be written: the lines are lost, quietly
    }
    defer { close(fd) }
    var line = text
    _ = line.withUTF8 { FileIO.writeRaw(fd, UnsafeRawBufferPointer($0)) }
  }

  /// Last access time per blob, and hit/miss counts.
  func times() -> (last: [ObjectID: Int], hits: Int, misses: Int) {
    var last = [ObjectID: Int]()
    var hits = 0
    var misses = 0
    guard let data = (try? FileIO.readFileIfPresent(path)) ?? nil else { return ([:], 0, 0) }
    for line in data.split(separator: UInt8(ascii: "\n")) {
      let parts = line.split(separator: UInt8(ascii: " "))
      guard parts.count == 3, let id = ObjectID(hex: String(decoding: parts[1], as: UTF8.self)),
        let t = Int(String(decoding: parts[2], as: UTF8.self))
      else { continue }
      if parts[0].first == UInt8(ascii: "h") { hits += 1 } else { misses += 1 }
      last[id] = max(last[id] ?? 0, t)
    }
    return (last, hits, misses)
  }

  /// Past 4 MB, rewrites the log as one line per blob (its last access).
  func compact() {
    var st = stat()
    guard stat(path, &st) == 0, st.st_size > 4 << 20 else { return }
    let (last, _, _) = times()
    let text = last.map { "h \($0.key.hex) \($0.value)\n" }.joined()
    try? writeFileAtomically(Data(text.utf8), to: path)
  }
}
