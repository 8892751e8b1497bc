import Foundation
import Store
import Sync
import Testing

import TestSupport

/// What a maintainer or user is told: revoking a key that revocation cannot stop, and a cache
/// that cannot be removed.
@Suite(.serialized) struct ReportingTests {
  func keyID(_ pub: String) throws -> String {
    let d = try #require(FileManager.default.contents(atPath: pub))
    let o = try #require(try JSONSerialization.jsonObject(with: d) as? [String: Any])
    return try #require(o["keyid"] as? String)
  }

  @Test func revokingARevocationKeyWarnsThatOnlyARotationRemovesIt() throws {
    let w = try CLIWorld()
    try w.setUp()
    let rev = try keyID(w.k("revocation") + ".pub")
    var r = try w.run(
      "registry", "revoke", "--key-id", rev, "--reason", "laptop stolen", "--key", w.k("revocation"), "--to", w.store)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.out.hasPrefix("published revocation list version"))
    #expect(
      r.stderr
        == "warning: key '\(rev)' is a revocation key of root version 1: revoking it does not stop it from being used to "
        + "sign a newer revocation list, one without this entry (clients check revoked keys against index signatures "
        + "only); only a root rotation removes it: 'tsuku registry rotate-root --revocation-key NEW.pub'\n",
      "\(r.stderr)")
    // The same for a root key; an index key (what revocation does stop) gets no warning.
    let root = try keyID(w.k("root") + ".pub")
    r = try w.run("registry", "revoke", "--key-id", root, "--reason", "x", "--key", w.k("revocation"), "--to", w.store)
    #expect(r.status == 0)
    #expect(r.stderr.hasPrefix("warning: key '\(root)' is a root key of root version 1:"), "\(r.stderr)")
    let index = try keyID(w.k("index") + ".pub")
    r = try w.run("registry", "revoke", "--key-id", index, "--reason", "x", "--key", w.k("revocation"), "--to", w.store)
    #expect(r.status == 0)
    #expect(r.stderr.isEmpty, "\(r.stderr)")
  }

  @Test func cacheClearOnAReadOnlyCacheNamesThePathAndTheSystemReason() throws {
    let w = try CLIWorld()
    try w.setUp()
    #expect(try w.run("update-registry").status == 0)
    let cache = w.dir.file("home/cache")
    let m = try runTsuku(["--bind", cache, cache], env: [:], binary: "/bin/mount")
    try #require(m.status == 0, "mount: \(m.stderr)")
    defer {
      _ = try? runTsuku([cache], env: [:], binary: "/bin/umount")
      withExtendedLifetime(w) {}  // the folder is removed only once unmounted
    }
    _ = try runTsuku(["-o", "remount,bind,ro", cache], env: [:], binary: "/bin/mount")
    let r = try w.run("cache", "clear")
    #expect(r.status == 1)
    #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("operation could not be completed"))
    #expect(r.stderr.hasPrefix("error: cannot remove '\(cache)/"), "\(r.stderr)")
    #expect(r.stderr.hasSuffix("': Read-only file system\n"), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
  }

  @Test func foundationFileErrorsBecomeOneLineWithThePathAndErrno() {
    let underlying = NSError(domain: NSPOSIXErrorDomain, code: Int(EROFS))
    let cocoa = NSError(
      domain: NSCocoaErrorDomain, code: 512,
      userInfo: [NSFilePathErrorKey: "/h/cache", NSUnderlyingErrorKey: underlying])
    #expect(TsukuError.converting(cocoa, "cannot remove").message == "cannot remove '/h/cache': Read-only file system")
    let bare = NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileWriteVolumeReadOnly.rawValue)
    #expect(TsukuError.converting(bare, "cannot write", "/x").message == "cannot write '/x': Read-only file system")
    let mine = TsukuError(.integrity, "kept as it is")
    #expect(TsukuError.converting(mine) == mine)
  }
}
