import Foundation
import Store
import Testing

@testable import Sync
import TestSupport

/// Metrics recorded in-process: the exposition parses strictly, histograms are rebuilt exactly,
/// counts match the operations done, each named attack is one verification failure of its
/// reason, and label values stay within small fixed sets.
@Suite struct MetricsTests {
  /// Runs `body` with a fresh client, then flushes it (as a command ends): its metrics are
  /// added to the home's.
  func command<T>(_ w: World, _ sources: [String]? = nil, at t: Date? = nil, _ body: (Client) throws -> T) throws -> T {
    try w.client(sources, at: t).command(body)
  }

  func state(_ w: World) throws -> MetricsState { try Home(path: w.f.dir.file("home")).readMetrics() }

  func failures(_ s: MetricsState, _ reason: String, backend: String? = nil) -> Double {
    var m = ["reason": reason]
    if let backend { m["backend"] = backend }
    return s.total(TsukuMetrics.verificationFailures.name, matching: m)
  }

  // MARK: the exposition

  @Test("the strict parser refuses what the format does not allow")
  func strictParserRefusesBrokenExpositions() throws {
    let good = """
      # HELP x_seconds h
      # TYPE x_seconds histogram
      x_seconds_bucket{a="1",le="0.5"} 1
      x_seconds_bucket{a="1",le="+Inf"} 2
      x_seconds_sum{a="1"} 1.5
      x_seconds_count{a="1"} 2
      # TYPE y_total counter
      y_total{k="v"} 3

      """
    let parsed = try PrometheusText(good)
    #expect(parsed.value("y_total", ["k": "v"]) == 3)
    #expect(parsed.families["x_seconds"]?.help == "h")
    let broken = [
      good.replacingOccurrences(of: "le=\"0.5\"} 1", with: "le=\"0.5\"} 3"),  // counts decrease
      good.replacingOccurrences(of: "le=\"0.5\"", with: "le=\"2\"").replacingOccurrences(of: "le=\"+Inf\"", with: "le=\"1\""),  // no +Inf, order
      good.replacingOccurrences(of: "_count{a=\"1\"} 2", with: "_count{a=\"1\"} 5"),  // +Inf != count
      good.replacingOccurrences(of: "x_seconds_sum{a=\"1\"} 1.5\n", with: ""),  // no sum
      good.replacingOccurrences(of: "y_total{k=\"v\"} 3", with: "y_total{k=\"v\"} -3"),  // negative counter
      good.replacingOccurrences(of: "y_total{k=\"v\"} 3", with: "y_total{k=v} 3"),  // unquoted
      good.replacingOccurrences(of: "y_total{k=\"v\"} 3", with: "y_total{k=\"v\"} 3 1700000000"),  // timestamp
      good + "# TYPE y_total counter\n",  // TYPE after samples
      good + "y_total{k=\"v\"} 4\n",  // series twice
      good + "# just a comment\n",
      good + "\n",
      String(good.dropLast()),  // no final newline
    ]
    for (i, text) in broken.enumerated() {
      #expect(throws: PrometheusText.Invalid.self, "case \(i)") { try PrometheusText(text) }
    }
  }

  @Test("a histogram is rebuilt exactly: buckets, count and the sum to the nanosecond")
  func histogramIsRebuiltExactly() throws {
    let collector = MetricsCollector()
    var values = [String: [Int64]]()
    var rng = SystemRandomNumberGenerator()
    for backend in ["file", "git", "s3", "http"] {
      for _ in 0..<200 {
        // Spread over every bucket, past the last bound too.
        let v = Int64(Double.random(in: 0...1, using: &rng).squareRoot() * 40e9) / Int64.random(in: 1...1000, using: &rng)
        values[backend, default: []].append(v)
        collector.makeTimer(label: TsukuMetrics.fetchDuration.name, dimensions: [("backend", backend), ("op", "blob")])
          .recordNanoseconds(v)
      }
    }
    let text = collector.snapshot().prometheusText()
    let p = try PrometheusText(text)
    let family = try #require(p.families[TsukuMetrics.fetchDuration.name])
    #expect(family.type == "histogram")
    #expect(family.help == TsukuMetrics.fetchDuration.help)
    for (backend, vs) in values {
      let labels = ["backend": backend, "op": "blob"]
      let buckets = family.samples.filter { $0.name.hasSuffix("_bucket") && $0.labels["backend"] == backend }
      let finite = buckets.filter { $0.labels["le"] != "+Inf" }
      let bounds = finite.compactMap { Double($0.labels["le"]!) }.map { Int64(($0 * 1e9).rounded()) }
      #expect(bounds == TsukuMetrics.fetchBuckets)
      for (b, sample) in zip(bounds, finite) {
        #expect(sample.value == Double(vs.filter { $0 <= b }.count), "\(backend) le \(b)")
      }
      #expect(buckets.last?.labels["le"] == "+Inf")
      #expect(buckets.last?.value == Double(vs.count))
      #expect(p.value(TsukuMetrics.fetchDuration.name + "_count", labels) == Double(vs.count))
      let sum = vs.reduce(0, +)
      var frac = String(sum % 1_000_000_000)
      frac = String(repeating: "0", count: 9 - frac.count) + frac
      while frac.count > 1, frac.hasSuffix("0") { frac.removeLast() }
      let line = "\(TsukuMetrics.fetchDuration.name)_sum{backend=\"\(backend)\",op=\"blob\"} \(sum / 1_000_000_000).\(frac)\n"
      #expect(text.contains(line), "\(line)")
    }
  }

  @Test("the state keeps what was added, in the documented lines, and drops a histogram that does not add up")
  func stateFileRoundTrips() throws {
    let tmp = try TemporaryDirectory()
    let home = Home(path: tmp.path)
    let c = ClientMetrics()
    c.cacheHit(.recipe)
    c.fetched(backend: "s3", op: "blob", nanoseconds: 3_000_000, objects: 1, bytes: 10, document: false, at: Date())
    try home.addMetrics(c.collector.snapshot(reset: true))
    c.cacheHit(.recipe)
    try home.addMetrics(c.collector.snapshot(reset: true))
    let s = try home.readMetrics()
    #expect(s.counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"]) == 2)
    #expect(s.histograms.values.first?.count == 1)
    #expect(s.updatedAt != nil)
    #expect(s.recent.map(\.bytes) == [10])
    // The state's lines as documented.
    let text = s.stateText()
    #expect(text.hasPrefix("tsuku-metrics 1\nupdated "))
    #expect(text.contains("\ncounter tsuku_cache_hits_total kind=recipe 2\n"))
    #expect(text.contains("\nhistogram tsuku_fetch_duration_seconds backend=s3,op=blob 500000,1000000,2500000,5000000,"))
    #expect(text.contains(" 0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0 3000000 1\n"))
    // Two generations: one per slot file, each with its header.
    let slots = try home.metricsPaths.map { try String(contentsOfFile: $0, encoding: .utf8) }
    #expect(slots[0].hasPrefix("tsuku-metrics-slot 1 ") && slots[1].hasPrefix("tsuku-metrics-slot 2 "))
    #expect(slots[1].hasSuffix(text))
    // Counts that do not add up are dropped, not rendered.
    let edited = try MetricsState(stateText: Data(text.replacingOccurrences(of: " 3000000 1\n", with: " 3000000 7\n").utf8))
    #expect(edited.histograms.isEmpty)
    #expect(edited.counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"]) == 2)
    // Odd names and label values survive the escaping.
    var odd = MetricsState()
    odd.counters[SeriesKey("a b%c", [("l=1", "x,y\nz"), ("e", ""), ("u", "é ✓")])] = 3.5
    odd.recent = [FetchRecord(backend: "b c", op: "%", seconds: 1.5e-05, bytes: 3, time: "t")]
    let back = try MetricsState(stateText: Data(odd.stateText().utf8))
    #expect(back.counters == odd.counters)
    #expect(back.recent == odd.recent)
    for broken in ["{nope", "tsuku-metrics 1\ncounter x - -1\n", "tsuku-metrics 1\nwhat is this\n", "tsuku-metrics 1\ncounter x a 1\n"] {
      #expect(throws: TsukuError.self, "\(broken)") { try MetricsState(stateText: Data(broken.utf8)) }
    }
  }

  @Test("a write cut short by a crash leaves the previous state; two damaged slots are an error, then start afresh")
  func tornWriteLeavesThePreviousState() throws {
    let tmp = try TemporaryDirectory()
    let home = Home(path: tmp.path)
    let c = ClientMetrics()
    for _ in 0..<3 {
      c.cacheHit(.recipe)
      try home.addMetrics(c.collector.snapshot(reset: true))
    }
    // Generation 3 is in slot 0; a crash halfway through writing generation 4 over it.
    let newest = home.metricsPaths[0]
    var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
    #expect(bytes.starts(with: Data("tsuku-metrics-slot 3 ".utf8)))
    bytes = bytes.prefix(bytes.count / 2)
    try bytes.write(to: URL(fileURLWithPath: newest))
    #expect(try home.readMetrics().counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"]) == 2)
    // The same length with other bytes (an edit, a bad sector): the hash tells.
    let other = try Data(contentsOf: URL(fileURLWithPath: home.metricsPaths[1]))
    try Data(String(decoding: other, as: UTF8.self).replacingOccurrences(of: "recipe 2", with: "recipe 9").utf8)
      .write(to: URL(fileURLWithPath: home.metricsPaths[1]))
    let e = #expect(throws: TsukuError.self) { try home.readMetrics() }
    #expect(e?.message.contains("is not whole") == true)
    // The next command starts afresh.
    c.cacheHit(.recipe)
    try home.addMetrics(c.collector.snapshot(reset: true))
    #expect(try home.readMetrics().counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"]) == 1)
  }

  @Test("nothing recorded: no metrics file, and a home that does not exist is not created")
  func nothingRecordedWritesNothing() throws {
    let w = try World()
    try command(w) { _ in }
    for p in Home(path: w.f.dir.file("home")).metricsPaths { #expect(!FileManager.default.fileExists(atPath: p)) }
    let missing = Home(path: w.f.dir.file("nowhere"))
    let c = ClientMetrics()
    c.cacheMiss(.recipe)
    c.flush(to: missing)
    #expect(!FileManager.default.fileExists(atPath: missing.path))
  }

  // MARK: counts match the operations

  @Test("a sync counts the objects and bytes its report gives; N reads are N cache hits")
  func countsMatchTheOperations() throws {
    let w = try World(recipes: ["fzf", "jq", "ripgrep", "bat"])
    let report = try command(w) { try $0.updateRegistry() }
    var s = try state(w)
    #expect(report.fetched_objects > 0)
    #expect(s.counter(TsukuMetrics.fetchedObjects.name, ["backend": "file", "what": "blob"]) == Double(report.fetched_objects))
    #expect(s.counter(TsukuMetrics.fetchedBytes.name, ["backend": "file", "what": "blob"]) == Double(report.fetched_bytes))
    #expect(s.counter(TsukuMetrics.fetchedObjects.name, ["backend": "file", "what": "document"]) >= 1)
    let hitsBefore = s.counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"])
    for name in ["fzf", "jq", "ripgrep", "bat", "fzf"] { _ = try command(w) { try $0.recipe(name) } }
    s = try state(w)
    #expect(s.counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"]) - hitsBefore == 5)
    #expect(s.counter(TsukuMetrics.cacheMisses.name, ["kind": "recipe"]) == 0)
    // A golden file not fetched yet: one miss, one fetch from the source, then a hit.
    try command(w) { c in
      _ = try c.plan("fzf", platform: "linux-amd64", version: nil)
    }
    s = try state(w)
    #expect(s.counter(TsukuMetrics.cacheHits.name, ["kind": "golden"]) + s.counter(TsukuMetrics.cacheMisses.name, ["kind": "golden"]) == 1)
    // The sample parses, and every count above is in it.
    let p = try PrometheusText(s.prometheusText())
    #expect(p.value(TsukuMetrics.cacheHits.name, ["kind": "recipe"]) == s.counter(TsukuMetrics.cacheHits.name, ["kind": "recipe"]))
    #expect(p.value(TsukuMetrics.fetchedBytes.name, ["backend": "file", "what": "blob"]) == Double(report.fetched_bytes))
    #expect(p.sum(TsukuMetrics.fetchDuration.name + "_count") == Double(s.recent.count) || s.recent.count == TsukuMetrics.recentFetches)
  }

  @Test("a failed request counts one error of its backend and class")
  func fetchErrorsCountPerBackendAndClass() throws {
    let w = try World()
    let gone = "file://" + w.f.dir.file("no-such-store")
    _ = try? command(w, [gone]) { try $0.updateRegistry() }
    let s = try state(w)
    #expect(s.counter(TsukuMetrics.fetchErrors.name, ["backend": "file", "class": "not-found"]) == 1)
    #expect(s.total(TsukuMetrics.fetchErrors.name) == 1)
  }

  // MARK: named attacks: one verification failure each, of its reason

  @Test("attack: a tampered blob in the source is one hash_mismatch of its backend")
  func tamperedSourceBlobIsOneHashMismatch() throws {
    let w = try World()
    let id = w.recipeID("fzf")
    try Data("tampered".utf8).write(to: URL(fileURLWithPath: w.store.root + "/" + id.path))
    #expect(throws: TsukuError.self) { try command(w) { try $0.updateRegistry() } }
    let s = try state(w)
    #expect(failures(s, "hash_mismatch", backend: "file") == 1)
    #expect(s.total(TsukuMetrics.verificationFailures.name) == 1)
    #expect(s.counter(TsukuMetrics.fetchErrors.name, ["backend": "file", "class": "integrity"]) == 1)
  }

  @Test("attack: a corrupt cached blob is one hash_mismatch of the cache")
  func corruptCachedBlobIsOneCacheHashMismatch() throws {
    let w = try World()
    _ = try command(w) { try $0.updateRegistry() }
    #expect(try tamperCachedBlob(cacheDir: w.cache.root, id: w.recipeID("jq")))
    #expect(try command(w) { try $0.recipe("jq") } == Data(RegistryFixture.recipe("jq").utf8))
    let s = try state(w)
    #expect(failures(s, "hash_mismatch", backend: "cache") == 1)
    #expect(s.counter(TsukuMetrics.cacheMisses.name, ["kind": "recipe"]) == 1)
  }

  @Test("attack: an index signed by a key the root does not name is one bad_signature")
  func foreignSignatureIsOneBadSignature() throws {
    let w = try World()
    var file = try IndexFile.parse(try #require(try w.store.readDocument(.index, maxSize: 1 << 16)), what: "i")
    file.index = try Envelope.sign(type: .index, payload: try #require(file.index.payloadBytes), keys: [try SigningKey.generate()])
    try w.store.apply(StoreChange(documents: [(.index, file.bytes)]))
    let e = #expect(throws: TsukuError.self) { try command(w) { try $0.updateRegistry() } }
    #expect(e?.code == .integrity)
    let s = try state(w)
    #expect(failures(s, "bad_signature", backend: "file") == 1)
    #expect(s.total(TsukuMetrics.verificationFailures.name) == 1)
  }

  @Test("attack: a mirror replaying an older index is one rollback")
  func replayedOlderIndexIsOneRollback() throws {
    let w = try World()
    let old = try #require(try w.store.readDocument(.index, maxSize: 1 << 16))
    try w.f.publish(w.input, to: w.store, at: w.later(10))
    #expect(try command(w) { try $0.updateRegistry() }.index_version == 2)
    let mirror = DirectoryStore(path: w.f.dir.file("mirror"))
    try mirror.apply(
      StoreChange(objects: try w.store.list().map { try w.store.get($0, maxSize: 1 << 20) }, documents: [(.root(1), w.f.root.bytes), (.index, old)]))
    #expect(throws: TsukuError.self) { try command(w, ["file://" + mirror.root], at: w.later(20)) { try $0.updateRegistry(includeGolden: true) } }
    let s = try state(w)
    #expect(failures(s, "rollback", backend: "file") == 1)
    #expect(s.total(TsukuMetrics.verificationFailures.name) == 1)
  }

  @Test("attack: an index past its expiry is one expired")
  func expiredIndexIsOneExpired() throws {
    let w = try World()
    #expect(throws: TsukuError.self) { try command(w, at: w.later(60 * 86400)) { try $0.updateRegistry() } }
    let s = try state(w)
    #expect(failures(s, "expired", backend: "file") == 1)
    #expect(s.total(TsukuMetrics.verificationFailures.name) == 1)
  }

  @Test("attack: a revoked hash is one revocation refusal")
  func revokedHashIsOneRefusal() throws {
    let w = try World()
    _ = try command(w) { try $0.updateRegistry() }
    try Maintainer.revoke([.hash(w.recipeID("fzf"))], reason: "backdoored", keys: [w.f.revocationKey], in: w.store, expiresDays: 10, now: w.later(1))
    _ = try command(w, at: w.later(2)) { try $0.updateRegistry() }
    let e = #expect(throws: TsukuError.self) { try command(w, at: w.later(3)) { try $0.recipe("fzf") } }
    #expect(e?.message.contains("revoked") == true)
    _ = try command(w, at: w.later(3)) { try $0.recipe("jq") }
    let s = try state(w)
    #expect(s.counter(TsukuMetrics.revocationRefusals.name, ["kind": "recipe"]) == 1)
    #expect(s.total(TsukuMetrics.revocationRefusals.name) == 1)
    #expect(s.total(TsukuMetrics.verificationFailures.name) == 0)
  }

  // MARK: labels

  @Test("the backend label is the scheme kind", arguments: [
    ("s3://bucket/reg?endpoint=http://127.0.0.1:8333", "s3"), ("https://cdn.example.invalid/reg", "http"),
    ("http://127.0.0.1:9/x", "http"), ("git+file:///repo?dir=store#main", "git"), ("file:///srv/reg", "file"),
    ("/srv/reg", "file"), ("./mirror", "file"), ("mem://x", "other"),
  ])
  func backendLabel(url: String, expected: String) {
    #expect(TsukuMetrics.backend(of: url) == expected)
  }

  @Test("label values come from small fixed sets: no names, URLs or hashes")
  func labelValuesStayBounded() throws {
    let w = try World()
    _ = try command(w) { try $0.updateRegistry() }
    _ = try command(w) { try $0.recipe("fzf") }
    _ = try? command(w) { try $0.recipe("nope") }
    _ = try? command(w, ["file://" + w.f.dir.file("gone")], at: w.later(1)) { try $0.updateRegistry() }
    #expect(try tamperCachedBlob(cacheDir: w.cache.root, id: w.recipeID("jq")))
    _ = try command(w) { try $0.recipe("jq") }
    let text = try state(w).prometheusText()
    let p = try PrometheusText(text)
    let allowed: [String: Set<String>] = [
      "backend": ["file", "git", "s3", "http", "other", "cache"], "op": ["blob", "batch", "document"],
      "what": ["blob", "document"], "class": ["not-found", "integrity", "unavailable", "usage", "other", "conflict", "findings"],
      "kind": ["recipe", "golden", "index"],
      "reason": ["hash_mismatch", "bad_signature", "rollback", "expired", "too_large", "malformed"],
    ]
    for (label, values) in p.labelValues where label != "le" {
      #expect(allowed[label] != nil, "unexpected label \(label)")
      #expect(values.isSubset(of: allowed[label] ?? []), "\(label): \(values)")
    }
    for leak in ["fzf", "jq", w.f.dir.path, String(w.recipeID("jq").hex.prefix(12))] { #expect(!text.contains(leak), "\(leak)") }
    #expect(Set(p.families.keys).isSubset(of: Set(TsukuMetrics.all.map(\.name))))
    for f in p.families.values { #expect(f.type == TsukuMetrics.byName[f.name]?.kind.rawValue) }
  }

  // MARK: the last fetches

  @Test("the median is over the last 10 fetches only")
  func medianOverTheLastTen() {
    var s = MetricsState()
    var d = MetricsState()
    // Two slow ones first, then 1..10 ms: the median of the last ten is 5.5 ms.
    for (i, ms) in ([900.0, 800.0] + (1...10).map(Double.init)).enumerated() {
      d.recent = [FetchRecord(backend: "s3", op: "blob", seconds: ms / 1000, bytes: i, time: "2026-01-01T00:00:00Z")]
      s.add(d)
    }
    #expect(s.recent.count == 10)
    #expect(s.recent.map(\.bytes) == Array(2...11))
    let m = s.medianFetchSeconds()
    #expect(m?.fetches == 10)
    #expect(abs((m?.seconds ?? 0) - 0.0055) < 1e-12)
    s.recent = Array(s.recent.prefix(3))  // 1, 2, 3 ms: odd count
    #expect(abs((s.medianFetchSeconds()?.seconds ?? 0) - 0.002) < 1e-12)
    #expect(MetricsState().medianFetchSeconds() == nil)
  }

  @Test("verification failures are classified from the refusal itself")
  func reasonsAreClassified() throws {
    let w = try World()
    let id = w.recipeID("fzf")
    let current = try #require(try w.store.readDocument(.index, maxSize: Limits.indexFile))
    let verified = try IndexVerifier.verify(current, root: w.f.root, state: TrustState(), now: w.f.now, source: "x")
    func refusal(_ body: () throws -> Void) -> TsukuError? { #expect(throws: TsukuError.self) { try body() } }

    // A blob over its declared size, then a blob whose bytes were changed, read from a store.
    let tooLarge = refusal { _ = try w.store.get(id, maxSize: 1) }
    try Data("tampered".utf8).write(to: URL(fileURLWithPath: w.store.root + "/" + id.path))
    let corrupt = refusal { _ = try w.store.get(id, maxSize: 1 << 20) }
    // A blob of a pack with a byte changed.
    var packed = Pack.build([Data("a blob in a pack".utf8)])
    packed[packed.count - 1] ^= 1
    let pack = try Pack(packed)
    let corruptPacked = refusal { _ = try pack.blob(pack.entries[0]) }
    // An index whose section carries no signature.
    var file = try IndexFile.parse(current, what: "i")
    file.index = Envelope(type: .index, payload: file.index.payload, signatures: [])
    let unsigned = refusal { _ = try IndexVerifier.verify(file.bytes, root: w.f.root, state: TrustState(), now: w.f.now, source: "x") }
    // After version 2 is trusted: version 1 again, and version 2 with other content.
    try w.f.publish(w.input, to: w.store, at: w.later(10))
    let next = try #require(try w.store.readDocument(.index, maxSize: Limits.indexFile))
    let trusted = try IndexVerifier.verify(next, root: w.f.root, state: TrustState(), now: w.later(10), source: "x").advancing(TrustState())
    let rollback = refusal { _ = try IndexVerifier.verify(current, root: w.f.root, state: trusted, now: w.later(10), source: "x") }
    var otherContent = trusted
    otherContent.index_version = verified.index.version
    otherContent.index_payload_sha256 = SHA256.hash(Data("other".utf8))
    let sameVersion = refusal {
      _ = try IndexVerifier.verify(current, root: w.f.root, state: otherContent, now: w.later(10), source: "x")
    }
    let expired = refusal { _ = try IndexVerifier.verify(current, root: w.f.root, state: TrustState(), now: w.later(60 * 86400), source: "x") }
    let malformed = refusal { _ = try IndexTree.parse(Data("{}".utf8), what: "index tree") }

    let cases: [(String, TsukuError?, String)] = [
      ("corrupt blob from a store", corrupt, "hash_mismatch"),
      ("corrupt blob in a pack", corruptPacked, "hash_mismatch"),
      ("unsigned index section", unsigned, "bad_signature"),
      ("older index version", rollback, "rollback"),
      ("same version, other content", sameVersion, "rollback"),
      ("expired index", expired, "expired"),
      ("blob over its size", tooLarge, "too_large"),
      ("malformed tree", malformed, "malformed"),
    ]
    for (what, e, label) in cases {
      let e = try #require(e, "\(what)")
      #expect(TsukuMetrics.reason(of: e) == label, "\(what): \(e.message)")
    }
  }
}
