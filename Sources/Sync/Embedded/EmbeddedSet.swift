import Foundation
import Store

/// The critical recipes and their golden files, built into the binary (generated into
/// `EmbeddedCritical.swift` by tools/gen-embedded, run by tools/resign-sample, from the sample registry's signed index).
/// They are served with an empty `TSUKU_HOME` and no source at all; they are trusted as part of
/// the binary and do not expire, but a synced revocation list still applies to them.
public enum EmbeddedSet {
  nonisolated(unsafe) private static var decoded: [String: IndexEntry]?

  private static func all() -> [String: IndexEntry] {
    if let d = decoded { return d }
    var out = [String: IndexEntry]()
    if let data = Data(base64Encoded: EmbeddedCritical.entries),
      let list = try? JSONDecoder().decode([IndexEntry].self, from: data)
    {
      for e in list { out[e.name] = e }
    }
    decoded = out
    return out
  }

  /// The built-in entry of a critical recipe.
  public static func entry(_ name: String) -> IndexEntry? { all()[name] }

  /// Every built-in entry.
  public static var entries: [IndexEntry] { all().values.sorted { $0.name < $1.name } }

  /// A built-in blob, verified against its name.
  public static func blob(_ id: ObjectID) -> Data? {
    guard let text = EmbeddedCritical.blobs[id.hex], let d = Data(base64Encoded: text), SHA256.hash(d) == id else {
      return nil
    }
    return d
  }

  /// The bytes of everything built in.
  public static var size: Int {
    EmbeddedCritical.blobs.values.reduce(0) { $0 + $1.utf8.count / 4 * 3 - $1.utf8.suffix(2).filter { $0 == UInt8(ascii: "=") }.count }
  }
}
