import Foundation
import NIOHTTP1
import Store
import Sync

/// One answer: status, headers and body (a HEAD answer keeps the body's length, not its bytes).
struct Reply: Sendable {
  var status: Int
  var headers: [(String, String)] = []
  var body = Data()
  var sendBody = true
  /// Complete headers, Content-Length included, made ahead (a blob's): used as they are.
  var prebuilt: HTTPHeaders? = nil

  static func text(_ status: Int, _ text: String, headers: [(String, String)] = []) -> Reply {
    Reply(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers, body: Data((text + "\n").utf8))
  }
}

/// What a request needs: an answer now, or a blob fetched again from a source first (its
/// cached copy was corrupt or gone), which must not run on an event loop.
enum Outcome: Sendable {
  case reply(Reply)
  case refetch(Snapshot.Blob, Snapshot)
}

/// Answers requests from the current snapshot. Every blob answer is verified when it is made:
/// the bytes read from the cache hash to the signed entry's SHA-256 and have its size, the
/// index has not expired, the hash is not revoked.
struct Responder: Sendable {
  let state: ServeState

  static let retryAfter = "30"

  enum Servable {
    case ok(Snapshot)
    case refused(Reply)
  }

  func respond(method: String, uri: String, ifNoneMatch: String?, now: Date = Date()) -> Outcome {
    let head = method == "HEAD"
    guard method == "GET" || head else {
      return .reply(.text(405, "method \(method) not allowed: GET and HEAD only", headers: [("Allow", "GET, HEAD")]))
    }
    var reply = answer(uri: uri, ifNoneMatch: ifNoneMatch, now: now)
    if case .reply(var r) = reply, head {
      r.sendBody = false
      reply = .reply(r)
    }
    return reply
  }

  private func answer(uri: String, ifNoneMatch: String?, now: Date) -> Outcome {
    // The path as sent: no percent-decoding, ever. The query is ignored.
    // Scanned as bytes: iterating Characters (grapheme clusters) costs more than the rest.
    let path =
      uri.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }).map { String(uri[..<$0]) }
      ?? uri
    if let why = Self.refusal(path) { return .reply(.text(400, "bad request path: \(why)")) }
    switch path {
    case "/healthz": return .reply(health(now))
    case "/metrics":
      return .reply(
        Reply(
          status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
          body: Data(state.metricsText(now: now).utf8)))
    default: break
    }
    let route: GoLayout.Route
    do {
      guard let r = try GoLayout.route(path) else { return .reply(.text(404, "not found: \(path)")) }
      route = r
    } catch let e as TsukuError {
      return .reply(.text(400, "bad request path: \(e.message)"))
    } catch {
      return .reply(.text(400, "bad request path"))
    }
    let snap: Snapshot
    switch servable(now) {
    case .refused(let r): return .reply(r)
    case .ok(let s): snap = s
    }
    let blob: Snapshot.Blob
    switch route {
    case .manifest:
      if let inm = ifNoneMatch, ETag.matches(inm, snap.manifestETag) {
        return .reply(Reply(status: 304, headers: Self.cacheHeaders(snap.manifestETag), sendBody: false))
      }
      return .reply(
        Reply(
          status: 200, headers: [("Content-Type", "application/json")] + Self.cacheHeaders(snap.manifestETag),
          body: snap.manifest))
    case .recipe(let name):
      guard let b = snap.recipes[name] else {
        return .reply(.text(404, "no recipe named '\(name)' in the registry (index version \(snap.version))"))
      }
      blob = b
    case .plan:
      guard let b = snap.plans[String(path.dropFirst())] else {
        return .reply(.text(404, "no such golden file in the registry (index version \(snap.version)): \(path)"))
      }
      blob = b
    }
    if let reason = snap.revoked[blob.ref.sha256] {
      // Never 404: the Go loader would move on to another provider or recipe.
      return .reply(.text(410, "\(blob.what) (sha256 \(blob.ref.sha256.hex)) is revoked: \(reason)"))
    }
    let etag = blob.etag
    if let inm = ifNoneMatch, ETag.matches(inm, etag) {
      return .reply(Reply(status: 304, headers: Self.cacheHeaders(etag), sendBody: false))
    }
    let data: Data
    do {
      // DirectoryStore.get hashes what it read and refuses bytes that are not the signed blob.
      data = try snap.cache.getPackedFirst(blob.ref.sha256, maxSize: blob.ref.size)
    } catch {
      return .refetch(blob, snap)
    }
    guard data.count == blob.ref.size else { return .refetch(blob, snap) }
    return .reply(Self.blobReply(blob, data))
  }

  static func blobReply(_ blob: Snapshot.Blob, _ data: Data) -> Reply {
    Reply(status: 200, body: data, prebuilt: blob.headers)
  }

  /// Clients revalidate every use (a revocation then reaches them on their next request).
  static func cacheHeaders(_ etag: String) -> [(String, String)] {
    [("ETag", etag), ("Cache-Control", "no-cache")]
  }

  /// The snapshot when it may be served: loaded, its index not expired, and confirmed by a
  /// source within TTL + max stale. A stale one (past the TTL) is served while a refresh runs.
  func servable(_ now: Date) -> Servable {
    guard let s = state.snapshot else {
      state.refreshInBackground()
      return .refused(
        .text(
          503, "no verified registry to serve yet: \(state.loadError ?? "loading")",
          headers: [("Retry-After", Self.retryAfter)]))
    }
    if now >= s.expires {
      state.refreshInBackground()
      return .refused(
        .text(
          503, "the index (version \(s.version)) expired at \(Timestamp.format(s.expires)); waiting for a newer one",
          headers: [("Retry-After", Self.retryAfter)]))
    }
    let age = now.timeIntervalSince(s.confirmedAt)
    let policy = state.settings.policy
    if age > policy.ttl + policy.maxStale {
      state.refreshInBackground()
      return .refused(
        .text(
          503,
          "the index (version \(s.version)) was last confirmed \(Sync.Duration.describe(age)) ago, more than the TTL + max stale allowed",
          headers: [("Retry-After", Self.retryAfter)]))
    }
    if age > policy.revocationTTL { state.refreshInBackground() }
    return .ok(s)
  }

  func health(_ now: Date) -> Reply {
    switch servable(now) {
    case .refused(let r): return r
    case .ok(let s):
      return .text(
        200,
        "ok: index version \(s.version), \(s.recipes.count) recipes, confirmed \(Timestamp.format(s.confirmedAt)), expires \(Timestamp.format(s.expires))"
      )
    }
  }

  /// Why a raw request path is refused before any lookup: percent-encoding (never decoded,
  /// so `%2e%2e` cannot become `..`), dot segments, empty segments, backslashes, control
  /// bytes. GoLayout.route checks these again.
  static func refusal(_ path: String) -> String? {
    var bytes = path.utf8.makeIterator()
    guard bytes.next() == UInt8(ascii: "/") else { return "it must start with '/'" }
    var prev = UInt8(ascii: "/")
    var dots = 0  // dots since the last '/', -1 once the segment has anything else
    for b in path.utf8.dropFirst() {
      switch b {
      case 0..<0x20, 0x7f: return "control byte"
      case UInt8(ascii: "%"): return "percent-encoding is not accepted"
      case UInt8(ascii: "\\"): return "backslash"
      case UInt8(ascii: "/"):
        if prev == UInt8(ascii: "/") { return "empty path segment" }
        if dots == 1 || dots == 2 { return "dot segment" }
        dots = 0
      case UInt8(ascii: "."): if dots >= 0 { dots += 1 }
      default: dots = -1
      }
      prev = b
    }
    if dots == 1 || dots == 2 { return "dot segment" }
    return nil
  }

  /// The refetch of a blob whose cached copy was corrupt or missing: through a client of the
  /// home (it removes the bad copy, fetches from the sources, verifies and caches), then
  /// checked again here. Runs off the event loops. Never the bad bytes: 500 when it fails.
  func refetch(_ blob: Snapshot.Blob, _ snap: Snapshot) -> Reply {
    state.refetches.wrappingAdd(1, ordering: .relaxed)
    do {
      let client = try Snapshot.makeClient(state.settings, warn: { [log = state.log] in log.warn($0) })
      defer { client.flush() }
      state.log.warn("cached \(blob.what) (sha256 \(blob.ref.sha256.hex.prefix(16))) is corrupt or missing; fetching it again")
      let data = try client.blob(blob.ref, what: blob.what, name: blob.name, kind: blob.kind)
      guard data.count == blob.ref.size, SHA256.hash(data) == blob.ref.sha256 else {
        throw TsukuError(.integrity, "the refetched \(blob.what) does not match the signed index")
      }
      if let reason = state.snapshot?.revoked[blob.ref.sha256] {
        return .text(410, "\(blob.what) (sha256 \(blob.ref.sha256.hex)) is revoked: \(reason)")
      }
      return Self.blobReply(blob, data)
    } catch {
      let e = (error as? TsukuError) ?? TsukuError.converting(error)
      state.log.warn("cannot serve \(blob.what): \(e.detailed)")
      return .text(500, "\(blob.what): the cached copy is corrupt and no source could supply a verified one")
    }
  }
}
