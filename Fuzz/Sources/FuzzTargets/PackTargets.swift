// The pack readers that take bytes from outside: a pack streamed from a source (PackAssembly,
// its table checked as its last byte arrives, before its own hash) and a pack file found in
// the cache (every reader of DirectoryStore's packs, merge and rewrite). Each input runs in a
// scratch folder of its own, emptied afterwards.
import Foundation
import Store

/// A scratch folder for this process, made once.
let scratch: String = {
  let dir = NSTemporaryDirectory() + "/tsuku-fuzz-\(getpid())"
  try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  return dir
}()

/// A fresh empty folder under the scratch folder.
func freshFolder(_ name: String) -> String {
  let dir = scratch + "/" + name
  try? FileManager.default.removeItem(atPath: dir)
  try? FileManager.default.createDirectory(atPath: dir + "/packs", withIntermediateDirectories: true)
  return dir
}

/// The entry count a pack's header declares (0 without one).
func declaredCount(_ d: Data) -> Int {
  guard d.count >= 12 else { return 0 }
  return d[d.startIndex + 8..<d.startIndex + 12].reduce(0) { $0 << 8 | Int($1) }
}

/// `packstream`: the first byte chooses how (bit 0: split into two parts at the second
/// `TSUKUPK1`; bit 1: each part declared one byte longer than it is; bits 2-7: the size of
/// the pieces the bytes arrive in, minus one); the rest are the streamed bytes, each part
/// declared with its own header's count, as a hostile source would serve a pack of the size
/// and count the index declares.
func fuzzPackStream(_ input: Data) {
  guard let mode = input.first else { return }
  let body = input.dropFirst()
  var pieces = [body]
  if mode & 1 != 0, body.count > 8, let r = body.dropFirst(8).range(of: Data(Pack.magic)) {
    pieces = [body[body.startIndex..<r.lowerBound], body[r.lowerBound...]]
  }
  let extra = mode & 2 != 0 ? 1 : 0
  let parts = pieces.map { p in
    PackAssembly.Part(id: SHA256.hash(Data(p)), size: p.count + extra, count: declaredCount(Data(p)))
  }
  let dir = freshFolder("stream")
  guard let a = try? PackAssembly(parts: parts, in: dir + "/packs", describe: { _ in "pack from 'fuzz'" }) else {
    return
  }
  let step = Int(mode >> 2) + 1
  var arrived = [Bool]()
  for (i, p) in pieces.enumerated() {
    let sink = a.sink(i)
    sink.restart()
    var ok = true
    var at = p.startIndex
    while ok, at < p.endIndex {
      let end = min(at + step, p.endIndex)
      ok = p[at..<end].withUnsafeBytes { sink.write($0) }
      at = end
    }
    arrived.append(ok && extra == 0)
  }
  if let out = try? a.commit(arrived: arrived), let path = out.path { _ = try? PackFile.verify(path) }
  a.abandon()
}

/// `packfile`: the input as a pack file in a cache's `packs/` beside a valid pack, through
/// every reader: the table read whole, verified, checked, merged, rewritten; blobs looked up,
/// read, listed and removed through the store; the damaged pack set aside.
func fuzzPackFile(_ input: Data) {
  if let p = try? Pack(input) { for e in p.entries.prefix(16) { _ = try? p.blob(e) } }
  let dir = freshFolder("file")
  let path = dir + "/packs/input.pack"
  guard FileManager.default.createFile(atPath: path, contents: input) else { return }
  let store = DirectoryStore(path: dir)
  guard let good = try? store.addPacks([Pack.build([Data("fuzz other".utf8), Data("fuzz more".utf8)])]).first else {
    return
  }
  _ = try? PackFile.table(path)
  _ = try? PackFile.verify(path, chunk: 4096)
  _ = try? PackFile.checkTable(path)
  let ids = PackFile.namedBlobs(path)
  for id in ids.prefix(16) {
    _ = try? store.contains(id)
    _ = try? store.get(id, maxSize: 1 << 20)
  }
  _ = store.sizes()
  _ = store.diskBytes()
  _ = try? PackFile.merge([path, good], into: dir)
  _ = try? PackFile.rewrite(path, dropping: Set(ids.prefix(2)), into: dir)
  _ = try? store.remove(Array(ids.prefix(1)))
  store.rereadPacks()
  _ = try? store.mergePacks(store.packFiles())
  _ = store.checkPacks()
  _ = store.takeDamagedPacks()
}
