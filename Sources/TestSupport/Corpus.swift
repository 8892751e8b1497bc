import Foundation
import Store
import Sync

/// The real registry history (`../shared/corpus`, beside the checkout), or `TSUKU_CORPUS_BUNDLE`.
public let corpusBundle: String = {
  if let p = ProcessInfo.processInfo.environment["TSUKU_CORPUS_BUNDLE"], !p.isEmpty { return p }
  let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  return checkout.deletingLastPathComponent().appendingPathComponent("shared/corpus/tsuku-registry-history.bundle").path
}()
public let corpusAvailable = gitCommandAvailable && FileManager.default.fileExists(atPath: corpusBundle)

/// Copies from a snapshot's work tree what publish accepts into `out/{critical,recipes,golden}`
/// and returns the files it refuses with its reason (paths relative to the tree), from the
/// publish scan's report (`tsuku-dev scan`, which tools/replay-corpus filters with): recipes
/// that fail validation or repeat a name, golden files that fail validation, name no kept
/// recipe or repeat a (tool, version, platform).
public func filteredInput(_ tree: String, into out: String) throws -> (PublishInput, [(String, String)]) {
  let fm = FileManager.default
  let sets = [("registry/embedded", "critical"), ("registry/recipes", "recipes"), ("registry/golden/plans", "golden")]
  var dirs = [String: String]()
  for (src, sub) in sets {
    try fm.createDirectory(atPath: out + "/" + sub, withIntermediateDirectories: true)
    if fm.fileExists(atPath: tree + "/" + src) { dirs[sub] = tree + "/" + src }
  }
  let scan = try Publisher.scan(
    PublishInput(recipes: dirs["recipes"], critical: dirs["critical"], golden: dirs["golden"]), mode: .reportRefusals)
  for path in scan.accepted {
    guard let (src, sub) = sets.first(where: { path.hasPrefix(tree + "/" + $0.0 + "/") }) else {
      throw TsukuError(.usage, "accepted file '\(path)' is outside the three input folders")
    }
    let dst = out + "/" + sub + "/" + path.dropFirst(tree.count + src.count + 2)
    try fm.createDirectory(atPath: (dst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(contentsOf: URL(fileURLWithPath: path)).write(to: URL(fileURLWithPath: dst))
  }
  let refused = scan.refused.map { (String($0.path.dropFirst(tree.count + 1)), $0.reason) }
  return (PublishInput(recipes: out + "/recipes", critical: out + "/critical", golden: out + "/golden"), refused)
}
