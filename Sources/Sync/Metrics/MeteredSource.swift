import Foundation
import Store

/// A source as the client reads it: a store decorator that times and counts every request
/// under the source's backend label. What the source does not have (an absent document, blobs
/// a batch left out) also counts as a `not-found` error. `location`, the revisions and
/// `contains` pass through uncounted (they send no request the client makes while syncing).
final class MeteredSource: ObjectReader {
  let store: any ObjectReader
  /// The backend label of the metrics (`file`, `git`, `s3`, `http`, `other`).
  let backend: String
  let metrics: ClientMetrics
  let now: Date

  init(store: any ObjectReader, backend: String, metrics: ClientMetrics, now: Date) {
    self.store = store
    self.backend = backend
    self.metrics = metrics
    self.now = now
  }

  var location: String { store.location }
  var revision: String? { store.revision }
  func revision(of id: ObjectID) -> String? { store.revision(of: id) }
  func contains(_ id: ObjectID) throws -> Bool { try store.contains(id) }

  private func measure<T>(_ op: String, document: Bool = false, _ size: (T) -> (objects: Int, bytes: Int), _ body: () throws -> T)
    throws -> T
  {
    let start = DispatchTime.now().uptimeNanoseconds
    do {
      let v = try body()
      let ns = Int64(clamping: DispatchTime.now().uptimeNanoseconds &- start)
      let (objects, bytes) = size(v)
      metrics.fetched(backend: backend, op: op, nanoseconds: ns, objects: objects, bytes: bytes, document: document, at: now)
      return v
    } catch {
      metrics.fetchFailed(backend: backend, error)
      throw error
    }
  }

  func get(_ id: ObjectID, maxSize: Int) throws -> Data {
    try measure("blob", { (1, $0.count) }) { try store.get(id, maxSize: maxSize) }
  }

  private func absent(_ n: Int) {
    if n > 0 { metrics.fetchFailed(backend: backend, TsukuError(.notFound, "absent"), times: n) }
  }

  func getMany(_ wanted: [(ObjectID, Int)]) throws -> [ObjectID: Data] {
    if wanted.isEmpty { return [:] }
    let got = try measure("batch", { ($0.count, $0.values.reduce(0) { $0 + $1.count }) }) { try store.getMany(wanted) }
    absent(Set(wanted.map(\.0)).count - got.count)
    return got
  }

  func fetch(into wanted: [(id: ObjectID, maxSize: Int, sink: any BodySink)]) throws -> [Bool] {
    if wanted.isEmpty { return [] }
    let found = try measure("batch", { f in
      zip(wanted, f).reduce((0, 0)) { acc, x in x.1 ? (acc.0 + 1, acc.1 + x.0.maxSize) : acc }
    }) { try store.fetch(into: wanted) }
    absent(found.filter { !$0 }.count)
    return found
  }

  func readDocument(_ name: DocumentName, maxSize: Int) throws -> Data? {
    let d = try measure("document", document: true, { ($0 == nil ? 0 : 1, $0?.count ?? 0) }) {
      try store.readDocument(name, maxSize: maxSize)
    }
    absent(d == nil ? 1 : 0)
    return d
  }

  func readDocument(_ name: DocumentName, maxSize: Int, ifNoneMatch etag: String?) throws -> DocumentRead {
    let r = try measure(
      "document", document: true,
      { r in
        if case .found(let d, _) = r { return (1, d.count) }
        return (0, 0)
      }
    ) { try store.readDocument(name, maxSize: maxSize, ifNoneMatch: etag) }
    absent(r == .absent ? 1 : 0)
    return r
  }
}
