// The fuzz targets: one entry point per parser of untrusted input, chosen by
// TSUKU_FUZZ_TARGET, shared by the libFuzzer binary (tsuku-fuzz) and the coverage replayer
// (tsuku-fuzz-cov). A crash, a hang or an uncaught trap is a bug; a thrown TsukuError is the
// expected answer to bad input.
import Foundation
import Store
import Sync

/// The parsers that can be fuzzed, by the name TSUKU_FUZZ_TARGET gives.
public enum FuzzTarget: String, CaseIterable, Sendable {
  case root, index, shard, tree, revocation, pack, packstream, packfile, recipe, golden, toml, scan
}

nonisolated(unsafe) var target = FuzzTarget.index

/// A fixed root so index.json inputs can reach the signature and version checks.
nonisolated(unsafe) var fixedRoot: TrustedRoot?

/// Reads TSUKU_FUZZ_TARGET (default `index`; an unknown name exits 64) and TSUKU_FUZZ_ROOT
/// (a root.json for the index target). Called once, before the first input.
public func fuzzInitialize() {
  let name = ProcessInfo.processInfo.environment["TSUKU_FUZZ_TARGET"] ?? "index"
  guard let t = FuzzTarget(rawValue: name) else {
    FileHandle.standardError.write(Data("unknown TSUKU_FUZZ_TARGET '\(name)'\n".utf8))
    exit(64)
  }
  target = t
  if let path = ProcessInfo.processInfo.environment["TSUKU_FUZZ_ROOT"], let bytes = FileManager.default.contents(atPath: path) {
    fixedRoot = try? TrustedRoot(anchor: bytes, what: "fuzz root")
  }
}

/// Runs one input through the chosen target's parsers.
public func runOne(_ data: Data) {
  switch target {
  case .root:
    if let r = try? TrustedRoot(anchor: data, what: "root") { _ = try? r.next(data, what: "root") }
  case .index:
    if let root = fixedRoot {
      var state = TrustState()
      state.index_version = 1
      _ = try? IndexVerifier.verify(data, root: root, state: state, now: Date(timeIntervalSince1970: 1_800_000_000), source: "fuzz")
    } else {
      _ = try? IndexFile.parse(data, what: "index.json")
    }
    _ = try? IndexPayload.parse(data, what: "index")
    _ = try? RevocationPayload.parse(data, what: "revocation")
  case .shard:
    if let s = try? IndexShard.parse(data, what: "shard") { for e in s.entries { _ = try? RecipeName.validate(e.name) } }
    _ = try? ShardRecipes.parse(data, expected: 1, what: "shard")
  case .tree:
    if let t = try? IndexTree.parse(data, what: "tree") {
      // A tree with subtrees reads the same bytes as its subtree: the input stands for both.
      _ = try? t.shard(for: "fzf", fetch: { _, _ in data })
    }
    _ = try? IndexSubtree.parse(data, what: "subtree")
  case .revocation:
    _ = try? RevocationList.parse(data, what: "revocation list")
  case .pack:
    if let p = try? Pack(data) {
      for e in p.entries.prefix(64) { _ = try? p.blob(e) }
      _ = p.corruptEntries()
      _ = p.entry(SHA256.hash(data))
      if let last = p.entries.last { _ = p.entry(last.id) }
    }
  case .packstream:
    fuzzPackStream(data)
  case .packfile:
    fuzzPackFile(data)
  case .recipe:
    _ = try? RecipeFile.validate(data, fileName: "fzf.toml")
  case .golden:
    _ = try? GoldenFile.validate(data, path: "golden/fzf/v1.0.0-linux-amd64.json")
  case .toml:
    if let text = String(data: data, encoding: .utf8) { _ = try? TOML.parse(text) }
  case .scan:
    // The documents' own reader must never take bytes the JSON decoder refuses, nor read
    // them as another value.
    let differ = JSONScanCheck.disagreements(data)
    if !differ.isEmpty { fatalError("the scan and the decoder disagree on: \(differ.joined(separator: ", "))") }
  }
}
