import Foundation
import Store

/// A document waiting for more signatures: threshold signing across machines.
///
/// `publish --stage FILE` (and `revoke`, `resign`, `rotate-root` with `--stage`) writes one;
/// `tsuku registry sign --staged FILE --key KEY` adds a signature on another machine; `tsuku
/// registry publish --staged FILE --to URL` checks the thresholds exactly as a client will and
/// writes it. A key that signs twice counts once.
public struct Staged: Codable, Sendable {
  public var format = Format.current
  public var type = "staged"
  /// The SHA-256 of the `index.json` this change was made against; publishing refuses if the
  /// store has moved on since.
  public var base_index_sha256: ObjectID?
  /// A staged `index.json`, or
  public var index: IndexFile?
  /// a staged root version N+1.
  public var root: Envelope?
  /// Which sections the signers add to.
  public var sign: [DocumentType]
  /// The store's root when this was staged: its roles say which keys may sign a staged
  /// index, and for a staged root N+1 it is root N, whose root keys must sign too. Absent in
  /// files staged by older versions, whose signers are then not checked.
  public var signing_root: Envelope?

  public init(base: ObjectID?, index: IndexFile, sign: [DocumentType], signingRoot: TrustedRoot? = nil) {
    base_index_sha256 = base
    self.index = index
    self.sign = sign
    signing_root = signingRoot.flatMap { try? JSON.decode(Envelope.self, $0.bytes, what: "root") }
  }

  public init(root: Envelope, signingRoot: TrustedRoot? = nil) {
    self.root = root
    sign = [.root]
    signing_root = signingRoot.flatMap { try? JSON.decode(Envelope.self, $0.bytes, what: "root") }
  }

  public static func read(_ path: String) throws -> Staged {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw TsukuError(.usage, "cannot read staged file '\(path)'")
    }
    let s = try JSON.decode(Staged.self, data, what: "staged file '\(path)'")
    try checkFormat(s.format, "staged file '\(path)'")
    guard s.type == "staged", (s.index == nil) != (s.root == nil) else {
      throw TsukuError(.usage, "'\(path)' is not a staged index or root")
    }
    return s
  }

  public func write(to path: String) throws {
    try writeFileAtomically(JSON.encode(self, pretty: true) + Data("\n".utf8), to: path)
  }

  /// Adds each key's signature to the sections this file asks signatures for, each section
  /// signed only by the keys that hold its role. A key that holds no role for any staged
  /// section is refused (usage) before anything is signed: its signature would never count.
  public mutating func addSignatures(_ keys: [SigningKey]) throws {
    let needs = try signingNeeds()
    if !needs.isEmpty {
      for key in keys where !needs.contains(where: { $0.keyids.contains(key.keyID) }) {
        throw TsukuError(.usage, "key \(key.keyID) holds no role that signs this staged \(stagedKind): \(Staged.describe(needs))")
      }
    }
    func mine(_ section: DocumentType) -> [SigningKey] {
      if needs.isEmpty { return keys }
      let ids = Set(needs.filter { $0.section == section }.flatMap(\.keyids))
      return keys.filter { ids.contains($0.keyID) }
    }
    if var r = root {
      try r.addSignatures(mine(.root))
      root = r
    }
    if var f = index {
      if sign.contains(.index) { try f.index.addSignatures(mine(.index)) }
      if sign.contains(.revocation), var r = f.revocation {
        try r.addSignatures(mine(.revocation))
        f.revocation = r
      }
      index = f
    }
  }

  /// Writes the staged document to `store` after checking it as a client would: refused if
  /// the store's `index.json` moved since staging, or if the store lacks the staged tree.
  public func publish(to store: any ObjectStore, now: Date) throws -> String {
    try publish(to: [store], now: now)
  }

  /// Writes the staged document to every target at once (`RegistryTargets`): refused if the
  /// newest `index.json` among them is not the one it was staged against, or if a target
  /// lacks the staged tree. A lagging target is caught up in the same commit.
  public func publish(to stores: [any ObjectStore], now: Date) throws -> String {
    if let root {
      let next = try Maintainer.writeRoot(root, to: stores)
      return "wrote root version \(next.version)"
    }
    guard let file = index else { throw TsukuError(.usage, "empty staged file") }
    let targets = try RegistryTargets(stores)
    // Run again after it reached only some stores: the newest index.json is this one; copy it.
    if let newest = targets.index, newest.bytes == file.bytes {
      try Maintainer.catchUp(targets, message: "copy staged index")
      return "published staged index version \(newest.index.version)"
    }
    let current = targets.index.map { SHA256.hash($0.bytes) }
    if current != base_index_sha256 {
      let location = targets.newestIndexHolder?.location ?? targets.targets.first?.location ?? ""
      throw TsukuError(
        .conflict, "index.json in '\(location)' changed since this was staged; stage it again")
    }
    // The index version for the message: the commit checks the whole file before writing.
    let version = file.index.payloadBytes.flatMap { try? IndexPayload.parse($0, what: "the staged index").version }
    try IndexCommit(
      file: file, check: sign == [.revocation] ? .revocationSection : .client(source: "the staged index"), sign: sign,
      message: "publish staged index version \(version ?? 0)", needsStagedTree: true
    ).commit(to: targets, now: now)
    return "published staged index version \(version ?? 0)"
  }
}
