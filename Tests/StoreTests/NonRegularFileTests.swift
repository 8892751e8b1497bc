import Foundation
import TestSupport
import Testing

@testable import Store

#if canImport(Glibc)
  import Glibc
#endif

/// What a call saw, handed back from the thread it ran on.
private final class Outcome: @unchecked Sendable {
  var error: TsukuError?
  var value: Data?
}

/// Runs `body` on a thread of its own. If it has not returned after `seconds` (it is blocked
/// on the FIFO at `fifo`), the hang is recorded and the FIFO's other ends are opened to release
/// it, so a blocking open fails the test instead of stalling the suite.
private func boundedOnFIFO(_ fifo: String, seconds: Int = 10, _ body: @escaping @Sendable () -> Void) {
  let done = DispatchSemaphore(value: 0)
  Thread {
    body()
    done.signal()
  }.start()
  guard done.wait(timeout: .now() + .seconds(seconds)) == .timedOut else { return }
  Issue.record("blocked on the FIFO '\(fifo)' for \(seconds) s")
  let reader = open(fifo, O_RDONLY | O_NONBLOCK)
  let writer = open(fifo, O_WRONLY | O_NONBLOCK)
  if writer >= 0 { close(writer) }
  done.wait()
  if reader >= 0 { close(reader) }
}

private func capture(_ o: Outcome, _ body: () throws -> Data?) {
  do { o.value = try body() } catch let e as TsukuError { o.error = e } catch {
    o.error = TsukuError(.other, "\(error)")
  }
}

/// Files that are not regular (FIFOs, links where a file is written) are refused by the one
/// open every reader and writer uses (`FileIO`), at once and without touching what a link
/// points to.
@Suite struct NonRegularFileTests {
  @Test func directoryStoreRefusesAFIFODocumentAsADamagedObjectWithoutBlocking() throws {
    try withTemporaryDirectory { tmp in
      let store = DirectoryStore(path: tmp)
      let fifo = tmp + "/index.json"
      #expect(mkfifo(fifo, 0o644) == 0)
      let o = Outcome()
      boundedOnFIFO(fifo) { capture(o) { try store.readDocument(.index, maxSize: 1 << 16) } }
      #expect(o.error?.code == .integrity)
      #expect(o.error?.reason == .notRegularFile)
      #expect(o.error?.message == "cannot read '\(fifo)': it is a FIFO, not a regular file")
    }
  }

  @Test func directoryStoreRefusesAFIFOBlobAsADamagedObjectWithoutBlocking() throws {
    try withTemporaryDirectory { tmp in
      let store = DirectoryStore(path: tmp)
      let data = Data("a blob".utf8)
      let id = SHA256.hash(data)
      try store.apply(StoreChange(objects: [data]))
      let path = tmp + "/" + id.path
      unlink(path)
      #expect(mkfifo(path, 0o644) == 0)
      let o = Outcome()
      boundedOnFIFO(path) { capture(o) { try store.get(id, maxSize: 100) } }
      #expect(o.error?.code == .integrity)
      #expect(o.error?.message == "cannot read '\(path)': it is a FIFO, not a regular file")
      // A folder under a blob's name is refused the same way.
      unlink(path)
      mkdir(path, 0o755)
      #expect(throws: TsukuError.self) { try store.get(id, maxSize: 100) }
    }
  }

  @Test func openingAFIFOToWriteNeverBlocks() throws {
    try withTemporaryDirectory { tmp in
      let fifo = tmp + "/state"
      #expect(mkfifo(fifo, 0o644) == 0)
      let o = Outcome()
      boundedOnFIFO(fifo) {
        capture(o) {
          let fd = try FileIO.open(fifo, O_WRONLY | O_CREAT, failing: "cannot write")
          close(fd)
          return nil
        }
      }
      #expect(o.error?.message == "cannot write '\(fifo)': it is a FIFO, not a regular file")
      let raw = Outcome()
      boundedOnFIFO(fifo) {
        let fd = FileIO.openRaw(fifo, O_WRONLY)
        if fd >= 0 { close(fd) } else { raw.error = TsukuError.io("", "", errno: errno) }
      }
      #expect(raw.error == TsukuError.io("", "", errno: ENXIO))
    }
  }

  @Test func aWriteOpenRefusesALinkAndNeverTouchesItsTarget() throws {
    try withTemporaryDirectory { tmp in
      let target = tmp + "/target"
      try Data("kept".utf8).write(to: URL(fileURLWithPath: target))
      let link = tmp + "/log"
      #expect(symlink(target, link) == 0)
      for flags in [O_WRONLY | O_APPEND | O_CREAT, O_RDWR | O_CREAT, O_WRONLY | O_TRUNC] {
        #expect(throws: TsukuError.notRegular("cannot write", link, .symbolicLink)) {
          try FileIO.open(link, flags, failing: "cannot write")
        }
      }
      #expect(FileManager.default.contents(atPath: target) == Data("kept".utf8))
      // A dangling link: creating through it would make its target.
      let dangling = tmp + "/lock"
      #expect(symlink(tmp + "/made-through-a-link", dangling) == 0)
      #expect(FileIO.openRaw(dangling, O_RDWR | O_CREAT) == -1 && errno == ELOOP)
      #expect(!FileManager.default.fileExists(atPath: tmp + "/made-through-a-link"))
      // Reading through a link to a regular file is allowed (a mirror may be made of links).
      #expect(try FileIO.readFile(link) == Data("kept".utf8))
    }
  }

  @Test func anAtomicWriteReplacesALinkNeverItsTarget() throws {
    try withTemporaryDirectory { tmp in
      let target = tmp + "/target"
      try Data("kept".utf8).write(to: URL(fileURLWithPath: target))
      let link = tmp + "/state.json"
      #expect(symlink(target, link) == 0)
      try writeFileAtomically(Data("new".utf8), to: link)
      #expect(FileManager.default.contents(atPath: target) == Data("kept".utf8))
      var st = stat()
      #expect(lstat(link, &st) == 0 && st.st_mode & S_IFMT == S_IFREG)
      #expect(FileManager.default.contents(atPath: link) == Data("new".utf8))
      // A link planted under the temporary name fails the create; nothing is written through it.
      let tmpLink = tmp + "/meta.json.tmp"
      #expect(symlink(target, tmpLink) == 0)
      #expect(throws: TsukuError.self) {
        try AtomicFile.write(Data("x".utf8), to: tmp + "/meta.json", temporary: tmpLink)
      }
      #expect(FileManager.default.contents(atPath: target) == Data("kept".utf8))
    }
  }

  @Test func removeTreeRemovesLinksNotWhatTheyPointTo() throws {
    try withTemporaryDirectory { tmp in
      let outside = tmp + "/outside"
      try FileIO.makeDirectories(outside + "/deep")
      try Data("kept".utf8).write(to: URL(fileURLWithPath: outside + "/deep/file"))
      try FileIO.makeDirectories(tmp + "/cache/a/b")
      try Data("x".utf8).write(to: URL(fileURLWithPath: tmp + "/cache/a/b/blob"))
      #expect(symlink(outside, tmp + "/cache/a/link") == 0)
      try FileIO.removeTree(tmp + "/cache")
      #expect(!FileManager.default.fileExists(atPath: tmp + "/cache"))
      #expect(FileManager.default.contents(atPath: outside + "/deep/file") == Data("kept".utf8))
      try FileIO.removeTree(tmp + "/cache")  // nothing there: nothing to do
      #expect(throws: TsukuError.io("cannot create directory", outside + "/deep/file", errno: EEXIST)) {
        try FileIO.makeDirectories(outside + "/deep/file")
      }
    }
  }
}
