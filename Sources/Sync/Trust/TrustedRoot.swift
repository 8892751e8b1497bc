import Foundation
import Store

/// A root that verified: its exact envelope bytes and its payload.
public struct TrustedRoot: Sendable, Equatable {
  public let bytes: Data
  public let payload: RootPayload
  public var version: Int { payload.version }

  /// Loads a root from an envelope's bytes, checking that its own root threshold signed it.
  /// This is how a trust anchor from a file (or built into the binary) is checked for damage;
  /// it is trusted because the user chose the file, not because it signs itself.
  public init(anchor bytes: Data, what: String) throws {
    if bytes.count > Limits.root {
      throw TsukuError(.integrity, "\(what) is \(bytes.count) bytes, more than the \(Limits.root) allowed", reason: .tooLarge)
    }
    let env = try JSON.decode(Envelope.self, bytes, what: what)
    guard env.type == .root, let raw = env.payloadBytes else {
      throw TsukuError(.integrity, "\(what) is a '\(env.type.rawValue)' document where a 'root' document belongs")
    }
    let payload = try RootPayload.parse(raw, what: what)
    _ = try env.verify(as: .root, role: .root, root: payload, what: what)
    self.bytes = bytes
    self.payload = payload
  }

  /// Reads a root file chosen by the user (`--root FILE`).
  public static func read(_ path: String) throws -> TrustedRoot {
    guard let bytes = FileManager.default.contents(atPath: path) else {
      throw TsukuError(.usage, "cannot read root file '\(path)'")
    }
    do {
      return try TrustedRoot(anchor: bytes, what: "root file '\(path)'")
    } catch let e as TsukuError {
      // A public key where the root document belongs: the commonest mix-up, said plainly.
      if let o = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any], o["public"] is String,
        o["keyid"] is String
      {
        throw TsukuError(
          .usage,
          "'\(path)' is a public key, not a root document: pass the registry's root.json"
            + " ('tsuku registry init' writes it; a store holds it at root/N.root.json)")
      }
      throw e
    }
  }

  private init(bytes: Data, payload: RootPayload) {
    self.bytes = bytes
    self.payload = payload
  }

  /// Verifies root version `version + 1`: signed by this root's threshold and by its own.
  public func next(_ bytes: Data, what: String) throws -> TrustedRoot {
    if bytes.count > Limits.root {
      throw TsukuError(.integrity, "\(what) is \(bytes.count) bytes, more than the \(Limits.root) allowed", reason: .tooLarge)
    }
    let env = try JSON.decode(Envelope.self, bytes, what: what)
    guard env.type == .root, let raw = env.payloadBytes else {
      throw TsukuError(.integrity, "\(what) is a '\(env.type.rawValue)' document where a 'root' document belongs")
    }
    let new = try RootPayload.parse(raw, what: what)
    guard new.version == version + 1 else {
      throw TsukuError(.integrity, "\(what) has version \(new.version), expected \(version + 1)")
    }
    _ = try env.verify(as: .root, role: .root, root: payload, what: "\(what) (old keys)")
    _ = try env.verify(as: .root, role: .root, root: new, what: "\(what) (new keys)")
    return TrustedRoot(bytes: bytes, payload: new)
  }

  /// Walks the chain one version at a time up to `target`; an expired intermediate root is
  /// fine, only the final one is judged for expiry (by the caller, against its clock reading).
  public func walk(to target: Int, fetch: (Int) throws -> Data?, source: String) throws -> (TrustedRoot, [Data]) {
    if target < version {
      throw TsukuError(
        .integrity, "index.json from '\(source)' names root version \(target), older than the trusted \(version)",
        reason: .rollback)
    }
    if target - version > Limits.maxRootRotations {
      throw TsukuError(
        .integrity,
        "index.json from '\(source)' names root version \(target), more than \(Limits.maxRootRotations) rotations past the trusted \(version)"
      )
    }
    var cur = self
    var chain = [Data]()
    while cur.version < target {
      let v = cur.version + 1
      guard let bytes = try fetch(v) else {
        throw TsukuError(.integrity, "root version \(v) is missing from '\(source)'")
      }
      cur = try cur.next(bytes, what: "root/\(v).root.json from '\(source)'")
      chain.append(bytes)
    }
    return (cur, chain)
  }

  /// Refuses a root whose expiry has passed.
  public func checkNotExpired(now: Date) throws {
    if let exp = payload.expiryDate, exp <= now {
      throw TsukuError(
        .integrity, "root version \(version) expired at \(payload.expires); the registry must publish a new root",
        reason: .expired)
    }
  }
}
