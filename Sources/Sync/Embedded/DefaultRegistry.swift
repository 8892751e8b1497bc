import Foundation
import Store

/// The registry this build knows without any configuration: the project's own
/// `registry-index/` read through git, and the root built into the binary.
public enum DefaultRegistry {
  /// The checkout this binary was built from (three folders above this source file).
  static let checkout: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }()

  /// `TSUKU_DEFAULT_SOURCE`, else `git+file://<checkout>?dir=registry-index/store`.
  public static func source(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String {
    if let s = env["TSUKU_DEFAULT_SOURCE"], !s.isEmpty { return s }
    return "git+file://\(checkout)?dir=registry-index/store"
  }

  /// The trusted root of the default registry, built into the binary.
  public static func root() throws -> TrustedRoot {
    guard let bytes = Data(base64Encoded: EmbeddedRoot.base64) else {
      throw TsukuError(.other, "the root built into this binary is damaged")
    }
    return try TrustedRoot(anchor: bytes, what: "the root built into tsuku")
  }
}
