import Foundation

/// What a run of the built `tsuku` binary printed and returned.
public struct CommandResult: Sendable {
  public let status: Int32
  public let stdout: Data
  public let stderr: String
  public var out: String { String(decoding: stdout, as: UTF8.self) }
}

/// The built `tsuku` binary: beside the test bundle, or in the checkout's `.build/debug`.
public func tsukuBinary(checkout: String) -> String {
  var candidates = [String]()
  if let env = ProcessInfo.processInfo.environment["TSUKU_BIN"] { candidates.append(env) }
  let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
  candidates += [argv0 + "/tsuku", checkout + "/.build/debug/tsuku"]
  return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
}

/// Runs `tsuku` with `arguments` and an environment made only of `env` (plus PATH), so a
/// developer's own TSUKU_* settings never leak into a test.
public func runTsuku(_ arguments: [String], env: [String: String], binary: String) throws -> CommandResult {
  try runTsuku(arguments, env: env, binary: binary, killAfter: nil)
}

/// As `runTsuku(_:env:binary:)`, killing the process (SIGKILL) if it is still running after
/// `killAfter` seconds: a guard, so that a command that would hang fails its test instead.
/// A killed run has status `SIGKILL + 128`. `stdin`, when given, is what the command reads on
/// its standard input (else it reads nothing).
public func runTsuku(
  _ arguments: [String], env: [String: String], binary: String, killAfter: Double?, stdin: Data? = nil
) throws -> CommandResult {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: binary)
  p.arguments = arguments
  var e = env
  if e["PATH"] == nil { e["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin" }
  p.environment = e
  let out = Pipe()
  let err = Pipe()
  p.standardOutput = out
  p.standardError = err
  let input = Pipe()
  p.standardInput = stdin == nil ? FileHandle.nullDevice : input
  try runRetryingBusyText(p)
  if let stdin {
    // A command that exits without reading all of it must not kill the test process.
    signal(SIGPIPE, SIG_IGN)
    DispatchQueue.global().async {
      try? input.fileHandleForWriting.write(contentsOf: stdin)
      try? input.fileHandleForWriting.close()
    }
  }
  if let killAfter {
    let pid = p.processIdentifier
    DispatchQueue.global().asyncAfter(deadline: .now() + killAfter) { [p] in
      if p.isRunning { kill(pid, SIGKILL) }
    }
  }
  let o = out.fileHandleForReading.readDataToEndOfFile()
  let r = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  let status = p.terminationReason == .uncaughtSignal ? p.terminationStatus + 128 : p.terminationStatus
  return CommandResult(status: status, stdout: o, stderr: String(decoding: r, as: UTF8.self))
}

/// Starts `p`, again for a while when the executable is "text file busy" (ETXTBSY): a binary a
/// test has just copied can still be open for writing in a child another test forked before
/// the copy's descriptor was closed, until that child execs.
func runRetryingBusyText(_ p: Process) throws {
  for attempt in 0... {
    do { return try p.run() } catch let e as NSError {
      let busy = (e.userInfo[NSUnderlyingErrorKey] as? NSError).map { $0.domain == NSPOSIXErrorDomain && $0.code == Int(ETXTBSY) }
      guard busy == true, attempt < 50 else { throw e }
      usleep(20_000)
    }
  }
}
