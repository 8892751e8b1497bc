import Foundation
import Store

extension Client {
  /// How a due revocation check ended.
  enum RevocationCheck {
    /// A source answered: unchanged (a 304, which moved `confirmed_at` forward) or a newer
    /// index that is now synced, verified and cached, its revoked blobs purged.
    case answered
    /// No source answered in time, or none could be asked: the cached index is served as it
    /// is, with one warning saying how old its revocations are.
    case unanswered
  }

  /// Whether the cached index's revocations are older than `TSUKU_REVOCATION_TTL`: the check
  /// is due once per command, when the recipe TTL did not already make this command ask.
  func revocationCheckDue(confirmed: Date?) -> Bool {
    guard !refreshTried, let confirmed else { return false }
    return now.timeIntervalSince(confirmed) > policy.revocationTTL
  }

  /// The revocation check of a cached index still inside its recipe TTL: one conditional
  /// read of `index.json` (If-None-Match with the ETag of the last sync), the chain walked as
  /// its separators say, all of it under the check's own time limit
  /// (`TSUKU_REVOCATION_DEADLINE`, at most `TSUKU_API_TIMEOUT`). A 304 renews the check time.
  /// A newer index is adopted whole, by the sync's own path (verified as any sync: signatures,
  /// rollback, expiry; revoked blobs purged before anything is served), the read reused so it
  /// costs no second request: a revocation changes `index.json` and the small revocation list,
  /// not the tree, so a warm sync of it is the same two requests as taking the list alone,
  /// and the cache and the trust state never disagree on the index version.
  func checkRevocations(confirmed: Date) -> RevocationCheck {
    refreshTried = true
    let age = Duration.describe(now.timeIntervalSince(confirmed))
    guard !chain.isEmpty else {
      warn(
        "revocations last checked \(age) ago; no source to ask (\(chain.emptyReason ?? "--offline or TSUKU_SOURCES=off"))"
      )
      return .unanswered
    }
    let limit = min(policy.revocationDeadline, (try? TransportOptions.apiTimeout()) ?? policy.revocationDeadline)
    let deadline = Deadline(startingAtFirstUse: limit)
    let meta = home.readCacheMeta()
    let cachedHash = try? cache.index()?.sha256
    let version = (try? trust())?.1.index_version ?? 0
    var failures = [String]()
    for entry in chain.entries {
      let url = entry.url
      let etag = Updater.knownETag(meta, url: url, indexVersion: version, cachedHash: cachedHash)
      let read: DocumentRead
      do {
        let store = try openReader(url, deadline: deadline)
        let source = MeteredSource(store: store, backend: TsukuMetrics.backend(of: url), metrics: metrics, now: now)
        read = try source.readDocument(.index, maxSize: Limits.indexFile, ifNoneMatch: etag)
      } catch {
        let e = (error as? TsukuError) ?? TsukuError.converting(error)
        failures.append("'\(url)': \(Self.checkFailure(e))")
        if (e.code == .notFound || entry.anyError) && !deadline.expired { continue }
        break
      }
      if case .absent = read {
        failures.append("'\(url)': no index.json")
        continue
      }
      do {
        _ = try updateRegistry(firstRead: (url, etag, read))
        return .answered
      } catch let e as TsukuError {
        warn(
          "revocations last checked \(age) ago; the newer index from '\(url)' could not be taken: \(([e.message] + e.details).joined(separator: "; "))"
        )
        return .unanswered
      } catch {
        warn("revocations last checked \(age) ago; the newer index from '\(url)' could not be taken: \(error)")
        return .unanswered
      }
    }
    warn(
      "revocations last checked \(age) ago; no source answered within \(Self.seconds(limit)) (TSUKU_REVOCATION_DEADLINE): \(failures.joined(separator: "; "))"
    )
    return .unanswered
  }

  /// A failure of the check, its own time limit named as such rather than the command's.
  private static func checkFailure(_ e: TsukuError) -> String {
    ([e.message] + e.details).joined(separator: "; ").replacingOccurrences(
      of: "the command's time limit", with: "the time limit"
    ).replacingOccurrences(of: "(TSUKU_API_TIMEOUT)", with: "(the revocation check)")
  }

  static func seconds(_ t: Double) -> String {
    t == t.rounded() ? "\(Int(t)) s" : String(format: "%.1f s", t)
  }

  // MARK: what is revoked

  /// The revocation records of the loaded index (or, when none can be loaded, of the cached
  /// one, signatures checked): what `info`, `list` and `search` show. Empty when nothing is
  /// revoked or no revocation list is at hand.
  public func revocations() -> [ObjectID: RevocationList.Hash] {
    var ref = loaded?.verified.revocation?.list
    if ref == nil, let c = try? cache.index(), let (root, _) = try? trust(),
      let t = try? TrustedMetadata.signaturesOnly(c.bytes, root: root, source: "cache")
    {
      ref = t.index?.revocation?.list
    }
    guard let ref, let data = try? blob(ref, what: "revocation list"),
      let list = try? RevocationList.parse(data, what: "revocation list")
    else { return [:] }
    var out = [ObjectID: RevocationList.Hash]()
    for h in list.hashes { out[h.sha256] = h }
    return out
  }
}
