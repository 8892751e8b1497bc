import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A test-only hook for crash testing: with `TSUKU_TEST_CRASH_AT=N` in the environment, the
/// process kills itself with SIGKILL (as `kill -9` would: no cleanup runs) at the Nth write step
/// it reaches. With `TSUKU_TEST_CRASH_LABEL=PREFIX` too, only the steps whose label starts with
/// PREFIX are counted (`after target` : the Nth target a multi-store command wrote). Without
/// the variable this costs one branch per step.
public enum CrashPoint {
  private static let target: Int? = ProcessEnvironment.current["TSUKU_TEST_CRASH_AT"].flatMap { Int($0) }
  private static let prefix: String? = ProcessEnvironment.current["TSUKU_TEST_CRASH_LABEL"]
  /// Steps reached so far; counted under a lock, as blobs are written on several threads.
  private static let count = Mutex(0)

  /// Marks one write step; `label` is printed to stderr when the process dies here.
  @inline(__always)
  public static func step(_ label: @autoclosure () -> String) {
    guard let target else { return }
    let text = label()
    if let prefix, !text.hasPrefix(prefix) { return }
    let n = count.withLock { c in
      c += 1
      return c
    }
    if n == target {
      FileHandle.standardError.write(Data("crash point \(target): \(text)\n".utf8))
      kill(getpid(), SIGKILL)
    }
  }
}
