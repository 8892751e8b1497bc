import Foundation
import Store

/// A static https file server on 127.0.0.1 over a folder (Python's `http.server` behind TLS),
/// with a self-signed certificate made by the `openssl` command: a real https source for a
/// directory store, and a CA bundle to trust it with (`TSUKU_CA_BUNDLE`). Stopped on deinit.
public final class HTTPSFileServer: @unchecked Sendable {
  // Safe: set once in init, only read afterwards.
  public let port: Int
  /// The certificate to trust, as a CA bundle file.
  public let caBundle: String
  public var url: String { "https://127.0.0.1:\(port)" }
  private let process: Process
  private let work: TemporaryDirectory

  /// Whether `python3` and `openssl` are installed.
  public static let available: Bool = ["python3", "openssl"].allSatisfy { tool in
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
      FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
    }
  }

  /// Serves `root` until the object goes away.
  public init(root: String) throws {
    work = try TemporaryDirectory(prefix: "tsuku-tls")
    caBundle = work.file("cert.pem")
    let key = work.file("key.pem")
    let openssl = Process()
    openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    openssl.arguments = [
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", key, "-out", caBundle, "-days", "1", "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1",
    ]
    openssl.standardOutput = FileHandle.nullDevice
    openssl.standardError = FileHandle.nullDevice
    try openssl.run()
    openssl.waitUntilExit()
    guard openssl.terminationStatus == 0 else { throw TsukuError(.other, "openssl could not make a test certificate") }
    let script = """
      import http.server, ssl, sys, os
      os.chdir(sys.argv[1])
      class Quiet(http.server.SimpleHTTPRequestHandler):
          def log_message(self, *a): pass
      srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
      ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      ctx.load_cert_chain(sys.argv[2], sys.argv[3])
      srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
      open(sys.argv[4], "w").write(str(srv.server_address[1]))
      srv.serve_forever()
      """
    let portFile = work.file("port")
    process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, root, caBundle, key, portFile]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    var found: Int?
    for _ in 0..<100 {
      if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let p = Int(text) {
        found = p
        break
      }
      usleep(50_000)
    }
    guard let found else {
      kill(process.processIdentifier, SIGKILL)
      throw TsukuError(.other, "the https test server did not start")
    }
    port = found
  }

  deinit {
    // SIGKILL: the test runner's blocked signals are inherited, so SIGTERM may never arrive.
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }
}
