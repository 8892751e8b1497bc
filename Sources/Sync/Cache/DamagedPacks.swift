import Foundation
import Store

extension Client {
  /// Reports the packs the cache set aside during this command (a table that did not check
  /// out: see `DamagedPack`): a warning, an audit event that names the cache (not a source:
  /// the cache is what failed), and a cache verification failure in the metrics. Called by
  /// `flush()`, so whichever operation found the damage, it is reported once.
  func reportDamagedPacks() {
    for d in cache.store.takeDamagedPacks() {
      let outcome = d.movedTo.map { "moved it to '\($0)'" } ?? "removed it"
      warn("cached \(d.error.message); \(outcome): its \(d.blobs.count) blobs are fetched again when needed")
      recorder.record(
        AuditEvent("verify_failure", time: now, source: home.cacheDir, detail: "\(d.error.message); \(outcome)"))
      metrics.verificationFailed(backend: "cache", d.error)
    }
  }
}
