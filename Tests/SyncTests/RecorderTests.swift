import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// What a command records is written when it says so, never behind its back.
@Suite struct RecorderTests {
  @Test("audit events, cache reads and metrics are written by flush, not before")
  func recordingsWaitForTheFlush() throws {
    let w = try World()
    let home = Home(path: w.f.dir.file("home"))
    let c = try w.client()
    _ = try c.updateRegistry()
    _ = try c.recipe("fzf")
    let files = [home.path + "/store-audit.log", home.cacheDir + "/access.log", home.path + "/metrics.state.0"]
    for f in files { #expect(!FileManager.default.fileExists(atPath: f), "\(f)") }
    c.flush()
    for f in files { #expect(FileManager.default.fileExists(atPath: f), "\(f)") }
    #expect(AuditLog(home: home).read().contains { $0.event == "cache_hit" && $0.name == "fzf" })
    #expect(c.cacheInfo().hits > 0)
    // A second flush adds only what was recorded since.
    c.flush()
    #expect(AuditLog(home: home).read().filter { $0.event == "cache_hit" }.count == 1)
  }
}
