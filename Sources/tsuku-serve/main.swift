import ArgumentParser
import Foundation
import Serve
import ServeOptions
import Store
import Sync

/// `tsuku serve`, run by `tsuku serve` (or directly): see ServeOptions for what it does.
struct TsukuServe: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tsuku serve", abstract: serveAbstract, discussion: serveDiscussion)

  @OptionGroup var options: ServeOptions

  func run() throws {
    let env = ProcessInfo.processInfo.environment
    var settings = try ServeSettings(
      listen: options.listen, allowRemote: options.allowRemote, home: Home.fromEnvironment(env),
      policy: try CachePolicy.fromEnvironment(env), env: env)
    guard options.maxConnections > 0, options.maxHeadBytes >= 1024, options.requestTimeout > 0, options.idleTimeout > 0
    else {
      throw TsukuError(
        .usage, "--max-connections must be positive, --max-head-bytes at least 1024, the timeouts positive")
    }
    settings.jsonLog = options.logFormat == .json
    settings.maxConnections = options.maxConnections
    settings.maxHeadBytes = options.maxHeadBytes
    settings.requestTimeout = options.requestTimeout
    settings.idleTimeout = options.idleTimeout
    settings.offline = options.offline
    if let t = options.threads {
      guard t > 0, t <= 256 else { throw TsukuError(.usage, "invalid --threads \(t): expected 1 to 256") }
      settings.threads = t
    }
    let log = RequestLog(json: settings.jsonLog)
    let state = ServeState(settings: settings, log: log)
    // The first snapshot before listening, so the first request is answered from it; a
    // failure is logged and retried in the background (meanwhile: 503).
    state.reload()
    state.startRefreshTimer(interval: 30)
    try HTTPServer(state: state).run { address in
      FileHandle.standardOutput.write(Data("listening on http://\(address)\n".utf8))
    }
    log.info("stopped")
  }
}

// SIGTERM and SIGINT stop the server: unblocked first, before any thread starts, in case the
// parent passed them on blocked (the mask survives exec and every thread inherits it).
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGTERM)
sigaddset(&stopSignals, SIGINT)
pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)

do {
  var command = try TsukuServe.parseAsRoot()
  try command.run()
  exit(0)
} catch let e as TsukuError {
  FileHandle.standardError.write(Data("error: \(e.detailed)\n".utf8))
  exit(e.code.exitCode)
} catch {
  TsukuServe.exit(withError: error)
}
