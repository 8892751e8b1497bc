import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A fresh folder under the system temporary directory, removed with everything in it when
/// the object goes away. Prefer `withTemporaryDirectory`, which bounds its life to a scope.
public final class TemporaryDirectory: Sendable {
  public let path: String

  public init(prefix: String = "tsuku-test") throws {
    var base = NSTemporaryDirectory()
    if base.hasSuffix("/") { base.removeLast() }
    var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw TsukuError(.other, "cannot create a temporary directory under '\(base)'")
    }
    path = String(cString: made)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  /// `path/name`.
  public func file(_ name: String) -> String { path + "/" + name }
}

/// Runs `body` with a fresh temporary directory that is removed afterwards.
public func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
  let dir = try TemporaryDirectory()
  return try withExtendedLifetime(dir) { try body(dir.path) }
}

/// Creates an empty git repository (no commits, HEAD on `branch`) at `path`.
@discardableResult
public func makeGitRepository(at path: String, bare: Bool = false, branch: String = "main") throws -> String {
  try GitStore.createRepository(at: path, bare: bare, branch: branch)
}

/// Whether a `git` command line is installed, for tests that check our commits with it.
public let gitCommandAvailable: Bool = {
  (try? runGit(["--version"], in: "/")) != nil
}()

/// Runs the `git` command line in `directory` with no user or system configuration and
/// returns its standard output, trimmed; throws with its standard error when it fails.
@discardableResult
public func runGit(_ arguments: [String], in directory: String) throws -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["git"] + arguments
  process.currentDirectoryURL = URL(fileURLWithPath: directory)
  var env = ProcessInfo.processInfo.environment
  env["GIT_CONFIG_NOSYSTEM"] = "1"
  env["GIT_CONFIG_GLOBAL"] = "/dev/null"
  env["HOME"] = directory
  env["GIT_AUTHOR_NAME"] = "test"
  env["GIT_AUTHOR_EMAIL"] = "test@example.invalid"
  env["GIT_COMMITTER_NAME"] = "test"
  env["GIT_COMMITTER_EMAIL"] = "test@example.invalid"
  process.environment = env
  let out = Pipe()
  let err = Pipe()
  process.standardOutput = out
  process.standardError = err
  try process.run()
  // Read before waiting, so a large output cannot fill the pipe and stall the child.
  let stdout = out.fileHandleForReading.readDataToEndOfFile()
  let stderr = err.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  let text = String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  if process.terminationStatus != 0 {
    let why = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    throw TsukuError(.other, "git \(arguments.joined(separator: " ")) failed in '\(directory)': \(why)")
  }
  return text
}

/// Deterministic pseudo-random bytes (a simple xorshift), so failures reproduce.
public func sampleData(count: Int, seed: UInt64) -> Data {
  var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  var out = [UInt8](repeating: 0, count: count)
  for i in 0..<count {
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    out[i] = UInt8(truncatingIfNeeded: x)
  }
  return Data(out)
}

/// Every regular file under `root` whose name starts with `prefix`, relative to `root`.
public func filesNamed(prefix: String, under root: String) -> [String] {
  guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
  var out = [String]()
  while let rel = walker.nextObject() as? String {
    if (rel as NSString).lastPathComponent.hasPrefix(prefix) { out.append(rel) }
  }
  return out.sorted()
}
