import ArgumentParser

/// The options of `tsuku serve`, declared once for both binaries: `tsuku` (which shows them in
/// its help, then execs `tsuku-serve` with the same arguments) and `tsuku-serve` (which runs
/// the server). This module depends on the argument parser only, so `tsuku` never links the
/// server library.
public struct ServeOptions: ParsableArguments {
  @Option(help: "Address to listen on, HOST:PORT ([::1]:PORT for IPv6); port 0 picks a free port, printed on start.")
  public var listen = "127.0.0.1:8080"

  @Flag(help: "Allow an address that is not loopback (0.0.0.0, a LAN address): the server then answers other machines.")
  public var allowRemote = false

  @Option(help: "Request log format on stderr, one line per request: text or json.")
  public var logFormat: ServeLogFormat = .text

  @Option(help: "Most connections open at once; beyond it new connections are closed at once.")
  public var maxConnections = 1024

  @Option(help: "Largest request head (request line and headers) in bytes; a larger one is answered 431 and the connection closed.")
  public var maxHeadBytes = 16384

  @Option(help: "Seconds a request head may take to arrive once it started; a slower one closes the connection.")
  public var requestTimeout: Double = 10

  @Option(help: "Seconds a kept-alive connection may stay idle between requests.")
  public var idleTimeout: Double = 60

  @Option(help: "Event loop threads (default: one per core).")
  public var threads: Int?

  @Flag(help: "Serve the verified cache only: never contact a source (no background refresh, no refetch).")
  public var offline = false

  public init() {}
}

public enum ServeLogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
  case text, json
}

/// The help text shared by `tsuku serve` and `tsuku-serve`.
public let serveAbstract = "Serve the verified registry over HTTP in the Go tsuku client's layout."
public let serveDiscussion = """
  Serves this TSUKU_HOME's verified cache at the paths today's tsuku (the Go client) reads:
    /recipes/<first letter>/<name>.toml
        a recipe's exact bytes
    /recipes.json, /_site/recipes.json
        the manifest, built from the verified recipes
    /plans/<embedded|letter>/<name>/v<version>/<platform>.json
        a golden file
    /healthz
        200 with the index version when serving, else 503
    /metrics
        the home's Prometheus series and the server's own

  Point the Go client at it with TSUKU_REGISTRY_URL=http://HOST:PORT and \
  TSUKU_MANIFEST_URL=http://HOST:PORT/recipes.json.

  Every response is verified before it is sent: the blob read from the cache must hash to \
  the signed index's SHA-256 and have its size, the index must not be expired and the hash \
  must not be revoked. A corrupt cached blob is fetched again from a source (else 500); a \
  revoked one answers 410 Gone with the reason, never 404, so the Go client does not fall \
  through to another recipe. ETags are the blob's hash ("sha256:<hex>"), If-None-Match \
  answers 304. A stale index is refreshed in the background without holding requests; past \
  TSUKU_RECIPE_CACHE_TTL + TSUKU_RECIPE_CACHE_MAX_STALE, or once the index has expired, the \
  answer is 503 with Retry-After. Only GET and HEAD (405 otherwise); a path with '%', '..', \
  '//', a backslash or a control byte is refused with 400 before any file is touched.

  One log line per request on stderr (method, path, status, bytes, milliseconds). SIGTERM or \
  SIGINT: stop accepting, finish the requests in flight, exit 0.

  The server is the separate `tsuku-serve` executable (SwiftNIO), which `tsuku serve` runs \
  from its own folder; `swift build --product tsuku-serve` builds it.
  """
