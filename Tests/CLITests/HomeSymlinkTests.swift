import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Runs the binary as `CLIWorld.run` does, killed after `seconds`: a command that blocks (on a
/// FIFO, say) fails its test instead of stalling the suite. `timedOut` says it was killed.
func runBounded(
  _ w: CLIWorld, _ args: [String], env extra: [String: String] = [:], seconds: Int = 60
) throws -> (result: CommandResult, timedOut: Bool) {
  let r = try runTsuku(args, env: w.env.merging(extra) { $1 }, binary: w.bin, killAfter: Double(seconds))
  return (r, r.status == SIGKILL + 128)
}

/// A local user who can plant files in `TSUKU_HOME` must not turn the client's writes into
/// writes elsewhere: every state file is opened without following a symbolic link and only if
/// it is a regular file. Each test plants a link (or a FIFO) under one file's name, runs a
/// command, and checks that the link's target is exactly as it was (content and existence)
/// and that the command says so in one line.
@Suite(.serialized) struct HomeSymlinkTests {
  let fzf = FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml")!
  static let precious = "precious: must never be written through a link\n"

  /// A synced home, and a victim file outside it.
  func world() throws -> (CLIWorld, String) {
    let w = try CLIWorld()
    try w.setUp()
    let r = try w.run("update-registry")
    try #require(r.status == 0, "\(r.stderr)")
    let victim = w.dir.file("victim")
    try Data(Self.precious.utf8).write(to: URL(fileURLWithPath: victim))
    return (w, victim)
  }

  func plantLink(_ path: String, to target: String) throws {
    unlink(path)
    try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
  }

  func isLink(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK
  }

  func unchanged(_ victim: String) -> Bool {
    FileManager.default.contents(atPath: victim) == Data(Self.precious.utf8)
  }

  func refusal(_ path: String) -> String {
    "'\(path)': it is a symbolic link; refusing to follow it; nothing was written to it"
  }

  @Test func symlinkedMetricsStateSlotsAreNotWrittenThrough() throws {
    let (w, victim) = try world()
    let victim2 = w.dir.file("victim2")
    try Data(Self.precious.utf8).write(to: URL(fileURLWithPath: victim2))
    let slots = [w.dir.file("home/metrics.state.0"), w.dir.file("home/metrics.state.1")]
    try plantLink(slots[0], to: victim)
    try plantLink(slots[1], to: victim2)
    let r = try w.run("show", "fzf")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    #expect(unchanged(victim) && unchanged(victim2), "a metrics slot was written through its link")
    #expect(isLink(slots[0]) && isLink(slots[1]))
    #expect(r.stderr == "warning: cannot write " + refusal(slots[0]) + "\n", "\(r.stderr)")
  }

  @Test func symlinkedAuditLogIsNotAppendedThrough() throws {
    let (w, victim) = try world()
    let audit = w.dir.file("home/store-audit.log")
    try plantLink(audit, to: victim)
    let r = try w.run("show", "fzf")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    #expect(unchanged(victim), "the audit log was appended through its link")
    #expect(r.stderr == "warning: cannot write audit log " + refusal(audit) + "\n", "\(r.stderr)")
  }

  @Test func symlinkedAccessLogIsNotAppendedThrough() throws {
    let (w, victim) = try world()
    let access = w.dir.file("home/cache/access.log")
    try plantLink(access, to: victim)
    let r = try w.run("show", "fzf")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == fzf)
    #expect(unchanged(victim), "the access log was appended through its link")
    #expect(r.stderr == "warning: cannot write " + refusal(access) + "\n", "\(r.stderr)")
  }

  @Test func symlinkedLockNeitherCreatesNorTouchesItsTarget() throws {
    let (w, victim) = try world()
    let lock = w.dir.file("home/lock")
    // A dangling link: following it would create the target.
    let absent = w.dir.file("created-through-the-lock")
    try plantLink(lock, to: absent)
    var r = try w.run("update-registry", "--force")
    #expect(r.status == 1, "\(r.stderr)")
    #expect(r.stderr == "error: cannot lock '\(lock)': it is a symbolic link; refusing to follow it\n", "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: absent), "the lock's link target was created")
    // A link to an existing file: refused the same way, the file untouched.
    try plantLink(lock, to: victim)
    r = try w.run("cache", "clear")
    #expect(r.status == 1, "\(r.stderr)")
    #expect(unchanged(victim))
    #expect(FileManager.default.fileExists(atPath: w.dir.file("home/cache/index.json")), "cleared without the lock")
    // The metrics lock too: the command still succeeds, with one warning.
    unlink(lock)
    let metricsLock = w.dir.file("home/metrics.lock")
    try plantLink(metricsLock, to: absent)
    r = try w.run("show", "fzf")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr == "warning: cannot lock " + refusal(metricsLock) + "\n", "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: absent))
  }

  /// Files replaced whole (trust state, cache meta, config) go through a temporary file and a
  /// rename: the rename replaces the link itself, never its target.
  @Test func atomicWritesReplaceALinkNeverItsTarget() throws {
    let (w, victim) = try world()
    let names = ["home/trust/state.json", "home/cache/meta.json", "home/trust/root.json", "home/config.toml"]
    var copies = [String: Data]()
    for n in names {
      let p = w.dir.file(n)
      let target = w.dir.file("victim-" + (n as NSString).lastPathComponent)
      copies[target] = FileManager.default.contents(atPath: p)
      try FileManager.default.moveItem(atPath: p, toPath: target)
      try plantLink(p, to: target)
    }
    // A sync rewrites the cache meta; init (same root) the trust state, the root and the config.
    var r = try w.run("update-registry", "--force")
    #expect(r.status == 0, "\(r.stderr)")
    r = try w.run("init", "--root", w.dir.file("store/root/1.root.json"), "--source", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    for (target, before) in copies { #expect(FileManager.default.contents(atPath: target) == before, "\(target)") }
    for n in names { #expect(!isLink(w.dir.file(n)), "\(n) is still a link") }
    #expect(unchanged(victim))
  }

  /// A FIFO under a state file's name: the command neither blocks nor writes into it.
  @Test func fifoAsAuditLogOrConfigNeverBlocks() throws {
    let (w, _) = try world()
    let audit = w.dir.file("home/store-audit.log")
    unlink(audit)
    #expect(mkfifo(audit, 0o600) == 0)
    var (r, timedOut) = try runBounded(w, ["show", "fzf"], seconds: 30)
    #expect(!timedOut, "show blocked on a FIFO named audit.log")
    #expect(r.status == 0, "\(r.stderr)")
    #expect(
      r.stderr
        == "warning: cannot write audit log '\(audit)': it is a FIFO, not a regular file; nothing was written to it\n")
    unlink(audit)
    let config = w.dir.file("home/config.toml")
    unlink(config)
    #expect(mkfifo(config, 0o600) == 0)
    (r, timedOut) = try runBounded(w, ["show", "fzf"], seconds: 30)
    #expect(!timedOut, "show blocked on a FIFO named config.toml")
    #expect(r.status == 1)
    #expect(r.stderr == "error: cannot read '\(config)': it is a FIFO, not a regular file\n", "\(r.stderr)")
  }
}
