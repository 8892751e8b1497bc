import Foundation
import Store
import Testing

import TestSupport

@testable import Sync

/// The `receive` record of a sync: listed in its line up to the inline limit, else in a side
/// file that rotates with the log and counts toward its size bound.
@Suite struct AuditReceiptTests {
  static func id(_ i: Int) -> ObjectID { SHA256.hash(Data("blob \(i)".utf8)) }

  static func receipt(_ home: Home, blobs: Int, version: Int, at now: Date) -> AuditReceipt {
    let r = AuditReceipt(home: home, time: now, source: "file:///store", indexVersion: version, sourceCommit: nil)
    for i in 0..<blobs { r.add(id(i + version * 100_000), kind: .recipe, name: "tool\(i)") }
    return r
  }

  @Test func aFewBlobsAreListedInTheLineAndManyInASideFile() throws {
    let f = try RegistryFixture()
    let home = Home(path: f.dir.file("home"))
    let log = AuditLog(home: home)
    log.record(Self.receipt(home, blobs: 3, version: 1, at: f.now))
    log.record(Self.receipt(home, blobs: 5000, version: 2, at: f.now))
    try log.flush()
    let lines = try String(contentsOfFile: log.path, encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 2)
    let events = log.read()
    #expect(events[0].blobs?.count == 3 && events[0].blobs_file == nil && events[0].count == 3)
    let side = try #require(events[1].blobs_file)
    #expect(events[1].blobs == nil && events[1].count == 5000)
    let folder = log.path + ".d"
    #expect(try String(contentsOfFile: folder + "/" + side, encoding: .utf8).split(separator: "\n").count == 5000)
    #expect(log.report(sha256: Self.id(200_000 + 4321)).blobs.first?.receipts.first?.index_version == 2)
    #expect(log.report(sha256: Self.id(100_000 + 1)).blobs.first?.received == true)
    // Nothing staged is left under the home.
    #expect(try FileManager.default.contentsOfDirectory(atPath: home.path).filter { $0.contains("staging") }.isEmpty)
  }

  @Test func sideFilesRotateWithTheLogAndCountTowardItsBound() throws {
    let f = try RegistryFixture()
    let home = Home(path: f.dir.file("home"))
    // Each receipt's side file is about 100 bytes a blob: 2,000 blobs take ~200 KB.
    let log = AuditLog(home: home, maxBytes: 300_000, keep: 2)
    for v in 1...6 {
      log.record(Self.receipt(home, blobs: 2000, version: v, at: f.now))
      try log.flush()
    }
    let fm = FileManager.default
    for file in [log.path, log.path + ".1", log.path + ".2"] {
      let size = (try fm.attributesOfItem(atPath: file)[.size] as? Int ?? 0) + AuditLog.folderBytes(file + ".d")
      #expect(size <= 300_000, "\(file) with its side files")
      #expect(try fm.contentsOfDirectory(atPath: file + ".d").count == 1)
    }
    #expect(!fm.fileExists(atPath: log.path + ".3") && !fm.fileExists(atPath: log.path + ".3.d"))
    // The oldest receipts left with their files; the newest answer.
    #expect(log.report(sha256: Self.id(100_000)).seen == false)
    #expect(log.report(sha256: Self.id(600_000)).blobs.first?.receipts.first?.index_version == 6)
  }

  @Test func aReceiptLargerThanTheBoundDropsTheOldestButKeepsTheTotal() throws {
    let f = try RegistryFixture()
    let home = Home(path: f.dir.file("home"))
    let log = AuditLog(home: home, maxBytes: 100_000, keep: 2)
    for v in 1...3 {
      log.record(Self.receipt(home, blobs: 500, version: v, at: f.now))
      try log.flush()
    }
    // About 200 KB: more than a generation's bound, within the history's (300 KB).
    log.record(Self.receipt(home, blobs: 2500, version: 4, at: f.now))
    try log.flush()
    let total = log.files.reduce(0) { sum, file in
      sum + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0) + AuditLog.folderBytes(file + ".d")
    }
    #expect(total <= 300_000)
    #expect(log.report(sha256: Self.id(400_000 + 2499)).seen)
    #expect(!log.report(sha256: Self.id(100_000)).seen)
  }

  @Test func linesAreStreamedAcrossChunksAndAnOverlongLineIsSkipped() throws {
    let f = try RegistryFixture()
    let path = f.dir.file("lines")
    // Lines of 100 bytes cross every 256 KiB chunk boundary; one line of 5 MiB is past the cap.
    var text = ""
    for i in 0..<6000 { text += String(format: "%099d", i) + "\n" }
    text += String(repeating: "x", count: 5 << 20) + "\n" + "last"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    var lines = [String]()
    LineReader.forEachLine(path) { lines.append(String(decoding: $0, as: UTF8.self)) }
    #expect(lines.count == 6001)
    #expect(lines[0] == String(format: "%099d", 0) && lines[5999] == String(format: "%099d", 5999))
    #expect(lines.last == "last")
  }

  @Test func aReceiptThatIsNeverRecordedLeavesNoStagedFile() throws {
    let f = try RegistryFixture()
    let home = Home(path: f.dir.file("home"))
    try FileManager.default.createDirectory(atPath: home.path, withIntermediateDirectories: true)
    do { _ = Self.receipt(home, blobs: 500, version: 1, at: f.now) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: home.path).filter { $0.contains("staging") }.isEmpty)
  }
}
