import Foundation
import Store

#if canImport(Glibc)
  import Glibc
#endif

/// An external signer (`--signer 'CMD ARGS'`): a program that holds a private key elsewhere (an
/// HSM, a cloud KMS, an agent) and signs through a small adapter. The command line is split
/// into words (blanks separate them; single or double quotes group them; no shell runs it);
/// the program is looked up on `PATH` and run in two ways:
///
/// - `CMD ARGS public-key`: prints its public key as a `.pub` key file's text, exit 0;
/// - `CMD ARGS sign KEYID`: reads the exact bytes to sign (the envelope's signing input,
///   format.md §4.1) on standard input until end of file and prints the 64-byte Ed25519
///   signature in standard base64 (blanks and newlines around it ignored), exit 0.
///
/// Its standard error is passed through. Each run is bounded: `TSUKU_SIGNER_TIMEOUT` (default
/// 30 s) in its own process group, killed whole when the time runs out, and at most 64 KiB of
/// output. Every signature is verified against the public key before it is used
/// (`SigningKey.sign`).
public struct ExternalSigner: MessageSigner {
  public let argv: [String]
  public let timeout: Double
  public var name: String { argv.joined(separator: " ") }
  static let maxOutput = 64 * 1024

  public init(_ commandLine: String, timeout: Double) throws {
    argv = try ExternalSigner.words(commandLine)
    if argv.isEmpty { throw TsukuError(.usage, "invalid --signer '\(commandLine)': no command") }
    self.timeout = timeout
  }

  /// The signing key of the signer `commandLine`: its public key, asked for once.
  public static func key(_ commandLine: String) throws -> SigningKey {
    let s = try ExternalSigner(commandLine, timeout: try timeoutFromEnvironment())
    let out = try s.run(["public-key"], input: [])
    let pub = try KeyFile.parsePublic(out, what: "the public key signer '\(s.name)' printed")
    return try SigningKey(publicKey: pub, signer: s)
  }

  public func sign(_ message: [UInt8], keyID: String) throws -> [UInt8] {
    let out = try run(["sign", keyID], input: message)
    let text = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard let sig = Data(base64Encoded: text), sig.count == Ed25519.signatureSize else {
      throw TsukuError(.integrity, "signer '\(name)' printed no 64-byte base64 signature; nothing was signed")
    }
    return [UInt8](sig)
  }

  /// `TSUKU_SIGNER_TIMEOUT`: a duration from 1s to 10m (default 30s).
  public static func timeoutFromEnvironment(_ env: [String: String] = ProcessEnvironment.current) throws
    -> Double
  {
    guard let s = env["TSUKU_SIGNER_TIMEOUT"], !s.isEmpty else { return 30 }
    guard let t = Duration.parse(s), t >= 1, t <= 600 else {
      throw TsukuError(.usage, "invalid TSUKU_SIGNER_TIMEOUT '\(s)': expected a duration from 1s to 10m, e.g. 30s")
    }
    return t
  }

  func run(_ extra: [String], input: [UInt8]) throws -> Data {
    let r = try BoundedProcess.run(argv + extra, input: input, timeout: timeout, maxOutput: ExternalSigner.maxOutput)
    switch r {
    case .exited(0, let out): return out
    case .exited(let code, _):
      throw TsukuError(.other, "signer '\(name)' failed (\(extra[0]): exit \(code)); nothing was signed")
    case .signaled(let sig):
      throw TsukuError(.other, "signer '\(name)' was killed by signal \(sig) (\(extra[0])); nothing was signed")
    case .timedOut:
      throw TsukuError(
        .unavailable,
        "signer '\(name)' did not answer within \(Duration.describe(timeout)) (\(extra[0]); TSUKU_SIGNER_TIMEOUT); killed it; nothing was signed"
      )
    case .tooMuchOutput:
      throw TsukuError(
        .integrity, "signer '\(name)' printed more than 64 KiB (\(extra[0])); killed it; nothing was signed")
    }
  }

  /// Blank-separated words; single quotes keep everything, double quotes keep all but `\"` and
  /// `\\`; a backslash outside quotes escapes the next character.
  static func words(_ line: String) throws -> [String] {
    var words = [String]()
    var word = ""
    var inWord = false
    var quote: Character?
    var escaped = false
    for c in line {
      if escaped {
        word.append(c)
        escaped = false
      } else if let q = quote {
        if c == q {
          quote = nil
        } else if c == "\\" && q == "\"" {
          escaped = true
        } else {
          word.append(c)
        }
      } else if c == "'" || c == "\"" {
        quote = c
        inWord = true
      } else if c == "\\" {
        escaped = true
        inWord = true
      } else if c == " " || c == "\t" || c == "\n" {
        if inWord { words.append(word) }
        word = ""
        inWord = false
      } else {
        word.append(c)
        inWord = true
      }
    }
    if quote != nil || escaped {
      throw TsukuError(.usage, "invalid --signer '\(line)': an unclosed quote or a trailing backslash")
    }
    if inWord { words.append(word) }
    return words
  }
}

/// A child process run with a time limit and an output limit: its standard input fed from
/// memory (over a socket, so a child that exits early cannot raise SIGPIPE here), its standard
/// output collected, its standard error shared with this process. It runs in its own process
/// group, which is killed whole when a limit is passed.
enum BoundedProcess {
  enum Outcome {
    case exited(Int32, Data)
    case signaled(Int32)
    case timedOut
    case tooMuchOutput
  }

  static func run(_ argv: [String], input: [UInt8], timeout: Double, maxOutput: Int) throws -> Outcome {
    var inPair: [Int32] = [-1, -1]
    var outPipe: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &inPair) == 0 else {
      throw TsukuError(.other, "cannot start '\(argv[0])': socketpair: \(String(cString: strerror(errno)))")
    }
    guard pipe(&outPipe) == 0 else {
      close(inPair[0])
      close(inPair[1])
      throw TsukuError(.other, "cannot start '\(argv[0])': pipe: \(String(cString: strerror(errno)))")
    }
    for fd in outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPair[1], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attr, 0)
    var cargs = argv.map { strdup($0) }
    cargs.append(nil)
    defer { cargs.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &actions, &attr, cargs, environ)
    close(inPair[1])
    close(outPipe[1])
    var (inFD, outFD) = (inPair[0], outPipe[0])
    defer {
      if inFD >= 0 { close(inFD) }
      if outFD >= 0 { close(outFD) }
    }
    if rc != 0 { throw TsukuError(.usage, "cannot run signer '\(argv[0])': \(String(cString: strerror(rc)))") }
    _ = fcntl(inFD, F_SETFL, fcntl(inFD, F_GETFL) | O_NONBLOCK)
    _ = fcntl(outFD, F_SETFL, fcntl(outFD, F_GETFL) | O_NONBLOCK)
    let end = Deadline.now() + timeout
    func killAll() {
      kill(-pid, SIGKILL)
      kill(pid, SIGKILL)
      var st: Int32 = 0
      while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    }
    var written = 0
    var output = Data()
    var buf = [UInt8](repeating: 0, count: 16 * 1024)
    if input.isEmpty { shutdown(inFD, Int32(SHUT_WR)) }
    while outFD >= 0 {
      let left = end - Deadline.now()
      if left <= 0 {
        killAll()
        return .timedOut
      }
      var fds = [pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)]
      if written < input.count { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
      let n = poll(&fds, nfds_t(fds.count), Int32(min(left, 1) * 1000) + 1)
      if n < 0 && errno != EINTR { break }
      if fds.count > 1, fds[1].revents != 0 {
        let sent = input[written...].withUnsafeBytes { send(inFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent > 0 {
          written += sent
        } else if sent < 0 && errno != EAGAIN && errno != EINTR {
          written = input.count  // the child stopped reading; its answer decides
        }
        if written == input.count { shutdown(inFD, Int32(SHUT_WR)) }
      }
      if fds[0].revents != 0 {
        let got = read(outFD, &buf, buf.count)
        if got > 0 {
          output.append(contentsOf: buf[0..<got])
          if output.count > maxOutput {
            killAll()
            return .tooMuchOutput
          }
        } else if got == 0 || (errno != EAGAIN && errno != EINTR) {
          close(outFD)
          outFD = -1
        }
      }
    }
    // Standard output is closed: wait for the exit, within what is left of the time.
    var st: Int32 = 0
    while true {
      let r = waitpid(pid, &st, WNOHANG)
      if r == pid { break }
      if r < 0 && errno != EINTR { return .signaled(0) }
      if Deadline.now() >= end {
        killAll()
        return .timedOut
      }
      usleep(5000)
    }
    if st & 0x7f == 0 { return .exited((st >> 8) & 0xff, output) }
    return .signaled(st & 0x7f)
  }
}
