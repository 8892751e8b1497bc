import Foundation
import Store

/// The registry this build knows without any configuration: the root built into the binary,
/// and, for a binary run from a checkout's build folder, that checkout's `registry-index/`
/// read through git. An installed binary has no default source: it is chosen with
/// `tsuku init --source URL` or `TSUKU_SOURCES`.
public enum DefaultRegistry {
  /// What a command that needs a source says when none is configured and there is no default.
  public static let noSourceMessage =
    "no registry source configured: choose one with 'tsuku init --source URL' (or set TSUKU_SOURCES)"

  /// The checkout the running executable lives in, found at run time from the executable's
  /// own path (not from where it was compiled): the nearest folder above it that holds
  /// `Package.swift` and `registry-index/store`. nil for a binary installed elsewhere.
  static let checkout: String? = executablePath().flatMap(checkout(above:))

  /// The nearest folder above `path` that holds `Package.swift` and `registry-index/store`.
  static func checkout(above path: String) -> String? {
    let fm = FileManager.default
    var url = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
    while url.path != "/" && !url.path.isEmpty {
      var isDir: ObjCBool = false
      if fm.fileExists(atPath: url.appendingPathComponent("Package.swift").path),
        fm.fileExists(atPath: url.appendingPathComponent("registry-index/store").path, isDirectory: &isDir),
        isDir.boolValue
      {
        return url.path
      }
      url.deleteLastPathComponent()
    }
    return nil
  }

  /// The running executable with symbolic links resolved: `/proc/self/exe` on Linux, else
  /// Foundation's idea of it, else argv[0].
  static func executablePath() -> String? {
    if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
    let p = Bundle.main.executablePath ?? CommandLine.arguments.first
    return p.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }
  }

  /// `TSUKU_DEFAULT_SOURCE`, else `git+file://<checkout>?dir=registry-index/store` when this
  /// executable runs from a checkout, else nil.
  public static func sourceIfAny(_ env: [String: String] = ProcessEnvironment.current) -> String? {
    if let s = env["TSUKU_DEFAULT_SOURCE"], !s.isEmpty { return s }
    return checkout.map { "git+file://\($0)?dir=registry-index/store" }
  }

  /// The default source (see `sourceIfAny`); with none, an `.unavailable` error (exit 5) that
  /// says how to choose a registry.
  public static func source(_ env: [String: String] = ProcessEnvironment.current) throws -> String {
    guard let s = sourceIfAny(env) else { throw TsukuError(.unavailable, noSourceMessage) }
    return s
  }

  /// The trusted root of the default registry, built into the binary.
  public static func root() throws -> TrustedRoot {
    guard let bytes = Data(base64Encoded: EmbeddedRoot.base64) else {
      throw TsukuError(.other, "the root built into this binary is damaged")
    }
    return try TrustedRoot(anchor: bytes, what: "the root built into tsuku")
  }
}
