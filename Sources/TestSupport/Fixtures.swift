import Foundation
import Store
import Sync

/// A registry made from scratch for a test: fresh keys, root version 1, input folders, a client
/// home, all inside one temporary directory.
public final class RegistryFixture: @unchecked Sendable {
  public let dir: TemporaryDirectory
  public let rootKey: SigningKey
  public let indexKey: SigningKey
  public let revocationKey: SigningKey
  public let root: TrustedRoot
  public let now: Date

  public init(now: Date = Date(), rootExpiresDays: Int = 365) throws {
    dir = try TemporaryDirectory(prefix: "tsuku-fixture")
    rootKey = try SigningKey.generate()
    indexKey = try SigningKey.generate()
    revocationKey = try SigningKey.generate()
    self.now = now
    root = try RegistryFixture.makeRoot(
      version: 1, signers: [rootKey], rootKeys: [rootKey], indexKeys: [indexKey], revocationKeys: [revocationKey],
      expires: now.addingTimeInterval(Double(rootExpiresDays) * 86400))
  }

  /// A root document signed by `signers`.
  public static func makeRoot(
    version: Int, signers: [SigningKey], rootKeys: [SigningKey], indexKeys: [SigningKey],
    revocationKeys: [SigningKey], expires: Date, thresholds: (Int, Int, Int) = (1, 1, 1)
  ) throws -> TrustedRoot {
    let payload = RootPayload(
      version: version, expires: expires,
      keys: (rootKeys + indexKeys + revocationKeys).map(\.publicKey),
      roles: [
        .root: RoleKeys(keyids: rootKeys.map(\.keyID), threshold: thresholds.0),
        .index: RoleKeys(keyids: indexKeys.map(\.keyID), threshold: thresholds.1),
        .revocation: RoleKeys(keyids: revocationKeys.map(\.keyID), threshold: thresholds.2),
      ])
    let env = try Envelope.sign(type: .root, payload: RootDocuments.encode(payload), keys: signers)
    let bytes = RootDocuments.encode(env)
    // A root verifies as an anchor when its own root threshold signed it.
    return try TrustedRoot(anchor: bytes, what: "fixture root version \(version)")
  }

  /// Writes root version 1 into a store.
  public func initialize(_ store: any ObjectStore) throws {
    try store.apply(StoreChange(documents: [(.root(1), root.bytes)], message: "root version 1"))
  }

  /// A valid recipe named `name`.
  public static func recipe(_ name: String, description: String = "a test tool", library: Bool = false) -> String {
    var s = """
      [metadata]
      name = "\(name)"
      description = "\(description)"
      homepage = "https://example.invalid/\(name)"

      """
    if library { s += "type = \"library\"\n" }
    s += """

      [[steps]]
      action = "download"
      url = "https://example.invalid/\(name).tar.gz"

      """
    if !library { s += "\n[verify]\ncommand = \"\(name) --version\"\n" }
    return s
  }

  /// A golden file for `tool` at `version` on `os[-family]-arch`.
  public static func golden(_ tool: String, version: String, os: String = "linux", family: String? = nil, arch: String = "amd64") -> String {
    let fam = family.map { ",\n    \"linux_family\": \"\($0)\"" } ?? ""
    return """
      {
        "format_version": 5,
        "tool": "\(tool)",
        "version": "\(version)",
        "platform": {
          "os": "\(os)",
          "arch": "\(arch)"\(fam)
        },
        "deterministic": true,
        "steps": []
      }

      """
  }

  /// Writes input folders: `recipes` as `<letter>/<name>.toml`, `critical` flat, `golden` as
  /// `<tool>/v<version>-<platform>.json` (keys are relative paths). Returns the publish input.
  public func writeInput(
    _ tag: String = "in", recipes: [String: String], critical: [String: String] = [:], golden: [String: String] = [:]
  ) throws -> PublishInput {
    let base = dir.file(tag)
    func put(_ rel: String, _ text: String, under sub: String) throws {
      let p = base + "/" + sub + "/" + rel
      try FileManager.default.createDirectory(
        atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try Data(text.utf8).write(to: URL(fileURLWithPath: p))
    }
    for (name, text) in recipes { try put("\(name.prefix(1))/\(name).toml", text, under: "recipes") }
    for (name, text) in critical { try put("\(name).toml", text, under: "critical") }
    for (rel, text) in golden { try put(rel, text, under: "golden") }
    for sub in ["recipes", "critical", "golden"] {
      try FileManager.default.createDirectory(atPath: base + "/" + sub, withIntermediateDirectories: true)
    }
    return PublishInput(recipes: base + "/recipes", critical: base + "/critical", golden: base + "/golden")
  }

  /// Publishes `input` to `store`, signed by the fixture's index key. Fixtures publish small
  /// registries whose later versions drop recipes on purpose, so removals are allowed unless
  /// `allowRemovals` is false.
  @discardableResult
  public func publish(
    _ input: PublishInput, to store: any ObjectStore, at time: Date? = nil, expiresDays: Int = 30, withRevocation: Bool = true,
    allowRemovals: Bool = true
  ) throws -> PublishResult {
    try Publisher.publish(
      input, keys: [indexKey], revocationKeys: withRevocation ? [revocationKey] : [], to: [store],
      expiresDays: expiresDays, now: time ?? now, allowRemovals: allowRemovals)
  }

  /// A client home that trusts this fixture's root.
  public func home(_ name: String = "home") throws -> Home {
    let h = Home(path: dir.file(name))
    if try h.loadTrust() == nil { try h.saveTrust(root: root, state: TrustState()) }
    return h
  }

  public func client(_ sources: [String], home name: String = "home", at time: Date? = nil) throws -> Client {
    Client(home: try home(name), sources: sources, now: time ?? now)
  }
}

/// Damages the cached copy of `id` where it really is: the loose file, or its bytes inside a
/// cached pack (the pack's table is left as it is, so only the blob's hash check can catch it).
/// Returns false when the cache does not hold it.
@discardableResult
public func tamperCachedBlob(cacheDir: String, id: ObjectID) throws -> Bool {
  let loose = cacheDir + "/" + id.path
  if var d = FileManager.default.contents(atPath: loose) {
    if d.isEmpty { d = Data("x".utf8) } else { d[d.startIndex] ^= 0x20 }
    try d.write(to: URL(fileURLWithPath: loose))
    return true
  }
  let dir = cacheDir + "/packs"
  for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".pack") {
    let path = dir + "/" + name
    guard let data = FileManager.default.contents(atPath: path), let pack = try? Pack(data),
      let e = pack.entry(id), e.size > 0
    else { continue }
    var bytes = [UInt8](data)
    let at = 12 + pack.entries.count * 44 + e.offset
    bytes[at] ^= 0x20
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return true
  }
  return false
}
