import Foundation
import Store
import Sync
import Testing

import TestSupport

/// A FIFO (or any file that is not regular) under the name of a document or a blob, in a
/// directory source or in the cache, is a damaged object of that store: refused at once, never
/// waited on, and the next source (or a fetch again) serves. Every run is bounded by a kill
/// timer, so a command that blocks fails its test instead of stalling the suite.
@Suite(.serialized) struct FIFOSourceTests {
  let fzf = FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml")!

  func fifo(at path: String) throws {
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    unlink(path)
    try #require(mkfifo(path, 0o644) == 0, "mkfifo '\(path)': \(String(cString: strerror(errno)))")
  }

  @Test func fifoAsIndexJSONInADirectorySourceFailsThatSourceAndTheNextServes() throws {
    let w = try CLIWorld()
    try w.setUp()
    let mirror = w.dir.file("mirror")
    try fifo(at: mirror + "/index.json")
    // Alone: the source failed for integrity (exit 4), at once.
    var (r, timedOut) = try runBounded(w, ["update-registry"], env: ["TSUKU_SOURCES": "file://" + mirror], seconds: 60)
    #expect(!timedOut, "update-registry blocked on a FIFO named index.json")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("cannot read '\(mirror)/index.json': it is a FIFO, not a regular file"), "\(r.stderr)")
    // First in a chain: the next source serves.
    (r, timedOut) = try runBounded(
      w, ["update-registry"], env: ["TSUKU_SOURCES": "file://\(mirror)|\(w.store)"], seconds: 60)
    #expect(!timedOut, "update-registry blocked on a FIFO named index.json")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.contains("index version 0 -> 1"), "\(r.out)")
    (r, timedOut) = try runBounded(w, ["show", "fzf", "--offline"], seconds: 60)
    #expect(r.stdout == fzf)
  }

  @Test func fifoNamedLikeACachedBlobIsRefusedRemovedAndFetchedAgain() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let loose = w.dir.file("home/cache/") + SHA256.hash(fzf).path
    try fifo(at: loose)
    var (r, timedOut) = try runBounded(w, ["show", "fzf"], seconds: 60)
    #expect(!timedOut, "show blocked on a FIFO named like a cached blob")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    #expect(r.stderr.contains("was corrupt and has been removed: cannot read '\(loose)': it is a FIFO"), "\(r.stderr)")
    var st = stat()
    #expect(lstat(loose, &st) != 0 || st.st_mode & S_IFMT == S_IFREG, "the FIFO is still in the cache")
    // verify counts such a file as corrupt, and does not block either.
    try fifo(at: loose)
    (r, timedOut) = try runBounded(w, ["verify", "--offline"], seconds: 60)
    #expect(!timedOut, "verify blocked on a FIFO named like a cached blob")
    #expect(r.status == 4, "\(r.out) \(r.stderr)")
  }

  @Test func fifoAsTheCachedIndexIsNoCacheAndTheNextSyncReplacesIt() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let cached = w.dir.file("home/cache/index.json")
    try fifo(at: cached)
    var (r, timedOut) = try runBounded(w, ["update-registry"], seconds: 60)
    #expect(!timedOut, "update-registry blocked on a FIFO as the cached index.json")
    #expect(r.status == 0, "\(r.stderr)")
    var st = stat()
    #expect(lstat(cached, &st) == 0 && st.st_mode & S_IFMT == S_IFREG)
    (r, timedOut) = try runBounded(w, ["show", "fzf", "--offline"], seconds: 60)
    #expect(r.stdout == fzf, "\(r.stderr)")
  }

  @Test func fifoNamedLikeABlobInADirectorySourceFailsThatSource() throws {
    let w = try CLIWorld()
    try w.setUp()
    // A mirror with the real blob, copied before the source is damaged.
    let mirror = w.dir.file("mirror")
    try FileManager.default.copyItem(atPath: w.dir.file("store"), toPath: mirror)
    let source = w.dir.file("store/") + SHA256.hash(fzf).path
    try fifo(at: source)
    var (r, timedOut) = try runBounded(w, ["update-registry"], seconds: 60)
    #expect(!timedOut, "update-registry blocked on a FIFO named like a blob")
    #expect(r.status == 4, "\(r.stderr)")
    #expect(r.stderr.contains("cannot read '\(source)': it is a FIFO, not a regular file"), "\(r.stderr)")
    // The mirror, after it in the chain, serves it.
    (r, timedOut) = try runBounded(w, ["update-registry"], env: ["TSUKU_SOURCES": "\(w.store)|file://\(mirror)"])
    #expect(!timedOut)
    #expect(r.status == 0, "\(r.stderr)")
    (r, _) = try runBounded(w, ["show", "fzf", "--offline"])
    #expect(r.stdout == fzf)
  }
}
