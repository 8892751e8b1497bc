import Foundation
import Store
import Testing

import TestSupport

@testable import Sync

/// Two writers of one audit log (each with its own open file, as two processes have: `flock`
/// locks belong to the open file, so they exclude each other exactly as processes do) append
/// receipts with side files while the log rotates under them: no line is lost, and every line
/// finds its side file in its own generation.
@Suite struct AuditRotationRaceTests {
  @Test func twoWritersRotatingAtOnceNeverSplitALineFromItsSideFile() throws {
    let f = try RegistryFixture()
    let home = Home(path: f.dir.file("home"))
    try FileManager.default.createDirectory(atPath: home.path, withIntermediateDirectories: true)
    let now = f.now
    let rounds = 40
    // About 10 KB of side file per receipt against a 30 KB bound: a rotation every few writes.
    DispatchQueue.concurrentPerform(iterations: 2) { writer in
      let log = AuditLog(home: home, maxBytes: 30_000, keep: 1000)
      for i in 0..<rounds {
        let version = (writer + 1) * 1000 + i
        log.record(AuditReceiptTests.receipt(home, blobs: 100, version: version, at: now))
        try? log.flush()
      }
    }
    let log = AuditLog(home: home, maxBytes: 30_000, keep: 1000)
    var versions = [Int]()
    var split = [String]()
    log.forEachEvent { event, file in
      if let v = event.index_version { versions.append(v) }
      if let side = event.blobs_file, !FileManager.default.fileExists(atPath: AuditLog.sideFolder(of: file) + "/" + side) {
        split.append("\(event.index_version ?? 0) in \((file as NSString).lastPathComponent) without \(side)")
      }
    }
    #expect(versions.count == 2 * rounds, "\(versions.count) receipts read")
    #expect(Set(versions) == Set((0..<rounds).flatMap { [1000 + $0, 2000 + $0] }))
    #expect(split.isEmpty, "\(split)")
    // It did rotate, many times.
    #expect(FileManager.default.fileExists(atPath: log.path + ".5"))
  }
}
