import Foundation

/// The store layout under a prefix of an S3-compatible bucket (Cloudflare R2, AWS S3,
/// SeaweedFS, MinIO), over `HTTPTransport` with SigV4 signing by libcurl.
///
/// - Reads as `RemoteStore` does. Without credentials requests go unsigned (a public bucket).
/// - `apply` checks the precondition before writing anything, uploads only the blobs the bucket
///   lacks (HEAD for a few, a listing for many; a present object of the wrong size is written
///   again) with `Cache-Control: public, max-age=31536000, immutable`, then roots, then
///   `index.json` with `public, max-age=60`. Every upload carries `x-amz-content-sha256` and
///   `Content-MD5`, and is checked: by its ETag (the MD5 of what was stored), else by a HEAD of its
///   size, so a bucket that stored 0 bytes is caught. `index.json` is re-checked right before it
///   is written, written with `If-Match`/`If-None-Match: *` for a precondition, and read back;
///   a publisher that lost a race gets `.conflict`.
/// - `remove` deletes; `list` and `inventory` page through ListObjectsV2 (sizes and
///   `LastModified`); `move` copies server-side (`CopyObject`) into the other area, then deletes.
public final class S3Store: RemoteStore, ObjectStore, @unchecked Sendable {
  public let s3: S3Location
  /// Where the requests' credentials come from (nil: unsigned). A `WebIdentityCredentials`
  /// tells which role and which token subject a publish acted as.
  public let credentials: (any S3CredentialSource)?

  /// Cache-Control of blobs: never changes, cache forever.
  public static let immutableCacheControl = "public, max-age=31536000, immutable"
  /// Cache-Control of documents: a CDN serves a stale `index.json` for a minute at most.
  public static let documentCacheControl = "public, max-age=60"
  /// Above this many blobs to check, `apply` lists the bucket instead of a HEAD per blob.
  public let listThreshold: Int
  /// Keys per ListObjectsV2 page (S3's maximum is 1000).
  public let listPageSize: Int

  /// A store on `s3` whose requests are signed with what `credentials` gives when each is made
  /// (fixed `S3Credentials`, or `WebIdentityCredentials` renewed as they near expiry); nil
  /// sends them unsigned.
  public init(
    _ s3: S3Location, credentials: (any S3CredentialSource)?, transport: any HTTPTransport, listThreshold: Int = 256,
    listPageSize: Int = 1000
  ) {
    self.s3 = s3
    self.credentials = credentials
    self.listThreshold = listThreshold
    self.listPageSize = listPageSize
    let signer = credentials.map { RequestSigner(region: s3.region, source: $0) }
    super.init(location: s3.url, transport: transport, signer: signer, urlFor: { s3.url($0) })
  }

  public func list() throws -> [ObjectID] { try listSizes().keys.sorted() }

  /// Creates the bucket; one that exists and is ours already is fine.
  public func createBucket() throws {
    let req = try reader.request("PUT", url: s3.bucketURL, body: Data())
    let r = try transport.perform(req)
    if r.isSuccess || S3Protocol.errorCode(r) == "BucketAlreadyOwnedByYou" { return }
    throw reader.failure(r, req, writing: true)
  }

  @discardableResult
  public func apply(_ change: StoreChange) throws -> ApplyReport { try apply(change, sources: []) }

  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    var report = ApplyReport()
    // A publisher that lost a race writes nothing: check before the blobs.
    var indexTag: String?
    if change.precondition != .none {
      let read = try reader.readDocument(.index, maxSize: Int.max, ifNoneMatch: nil)
      try checkPrecondition(change.precondition, current: read.data, location: location)
      indexTag = read.etag
    }
    var checkpointTag: String?
    if change.checkpoint != .any {
      let read = try reader.readDocument(.checkpoint, maxSize: Int.max, ifNoneMatch: nil)
      try checkCheckpointCondition(change.checkpoint, current: read.data, location: location)
      checkpointTag = read.etag
    }
    let blobs = ChangeBlobs(change, sources: sources)
    report.objectsPresent = blobs.duplicates
    let sizes = try existingSizes(blobs.map(\.id))
    let lacking = blobs.indices.filter { sizes[blobs[$0].id] != blobs[$0].size }
    report.objectsPresent += blobs.count - lacking.count
    // Read and uploaded a batch at a time: the bytes of a change are never all in memory.
    try BlobSource.batches(lacking.lazy.map { blobs[$0] }) { batch in
      try upload(batch.map { (blobs[lacking[$0.0]].id.path, $0.1, [("Cache-Control", Self.immutableCacheControl)]) })
    }
    report.objectsWritten = lacking.count
    report.bytesWritten = lacking.reduce(0) { $0 + blobs[$1].size }

    let docs = change.orderedDocuments
    if docs.isEmpty { return report }
    if change.precondition != .none {
      // Someone may have published while the blobs went up: one conditional GET tells.
      switch try reader.readDocument(.index, maxSize: Int.max, ifNoneMatch: indexTag) {
      case .notModified: break
      case let read:
        try checkPrecondition(change.precondition, current: read.data, location: location)
        indexTag = read.etag
      }
    }
    if change.checkpoint != .any {
      switch try reader.readDocument(.checkpoint, maxSize: Int.max, ifNoneMatch: checkpointTag) {
      case .notModified: break
      case let read:
        try checkCheckpointCondition(change.checkpoint, current: read.data, location: location)
        checkpointTag = read.etag
      }
    }
    let short = [("Cache-Control", Self.documentCacheControl)]
    let conditional = change.checkpoint != .any
    try writeOnce(docs.filter { $0.0.isWriteOnce })
    CrashPoint.step("s3: wrote the log files of \(location)")
    try upload(
      docs.filter { $0.0 != .index && !$0.0.isWriteOnce && !(conditional && $0.0 == .checkpoint) }.map { ($0.0.path, $0.1, short) })
    if conditional, let checkpoint = docs.last(where: { $0.0 == .checkpoint })?.1 {
      try writeCheckpoint(checkpoint, etag: checkpointTag)
    }
    if let index = docs.last(where: { $0.0 == .index })?.1 {
      try writeIndex(index, precondition: change.precondition, etag: indexTag, metadata: change.metadata)
    }
    // After index.json, best effort (a failed DELETE is left for the next change).
    let removals = try change.partialTileRemovals.map { try reader.request("DELETE", $0.path) }
    if !removals.isEmpty { _ = transport.perform(removals) }
    report.documentsWritten = docs.count
    return report
  }

  public func remove(_ ids: [ObjectID]) throws {
    let requests = try ids.map { try reader.request("DELETE", $0.path) }
    for (req, result) in zip(requests, transport.perform(requests)) {
      let r = try result.get()
      if !r.isSuccess && !reader.isAbsent(r) { throw reader.failure(r, req, writing: true) }
    }
  }

  public func inventory(_ area: ObjectArea, dated: Bool) throws -> [StoredObject] {
    try listing(area).map { StoredObject(id: $0.key, size: $0.value.size, modified: dated ? $0.value.modified : nil) }
      .sorted { $0.id < $1.id }
  }

  /// A server-side copy (`CopyObject`, the bytes never leave the bucket) into the other area,
  /// then a `DELETE` of the original; the copy's `LastModified` dates its arrival. A blob the
  /// source area lacks (404) is skipped.
  @discardableResult
  public func move(_ ids: [ObjectID], from: ObjectArea, to: ObjectArea) throws -> Int {
    if from == to || ids.isEmpty { return 0 }
    let list = Array(Set(ids)).sorted()
    let copies = try list.map { id in
      try reader.request(
        "PUT", to.path(id),
        headers: [
          ("x-amz-copy-source", "/" + s3.bucket + "/" + S3Protocol.encode(s3.key(from.path(id)), keepSlash: true)),
          ("x-amz-metadata-directive", "COPY"),
        ], body: Data())
    }
    var copied = [ObjectID]()
    for (i, result) in transport.perform(copies).enumerated() {
      let r = try result.get()
      if reader.isAbsent(r) { continue }
      // A copy can fail after the 200 has been sent: the error is then in the body.
      if !r.isSuccess || String(decoding: r.body.prefix(512), as: UTF8.self).contains("<Error>") {
        throw reader.failure(r, copies[i], writing: true)
      }
      copied.append(list[i])
    }
    try remove(copied, from: from)
    return copied.count
  }

  public func remove(_ ids: [ObjectID], from area: ObjectArea) throws {
    if area == .live { return try remove(ids) }
    let requests = try ids.map { try reader.request("DELETE", area.path($0)) }
    for (req, result) in zip(requests, transport.perform(requests)) {
      let r = try result.get()
      if !r.isSuccess && !reader.isAbsent(r) { throw reader.failure(r, req, writing: true) }
    }
  }

  /// Test and repair hook: writes raw bytes at a layout path, unverified.
  func putRaw(_ path: String, _ data: Data) throws {
    let req = try reader.request("PUT", path, headers: [("Content-Type", "application/octet-stream")], body: data)
    let r = try transport.perform(req)
    if !r.isSuccess { throw reader.failure(r, req, writing: true) }
  }

  // MARK: - writing

  /// The characters a metadata value keeps as they are: printable ASCII but `%`.
  private static let metadataValueCharacters = CharacterSet(charactersIn: Unicode.Scalar(0x20)...Unicode.Scalar(0x7e))
    .subtracting(CharacterSet(charactersIn: "%"))

  private func writeIndex(
    _ data: Data, precondition: StoreChange.Precondition, etag: String?, metadata: [(name: String, value: String)] = []
  ) throws {
    var headers = [("Cache-Control", Self.documentCacheControl)]
    for m in metadata {
      // Header-safe: printable ASCII only (anything else percent-encoded), bounded.
      let value = String(m.value.prefix(1024)).addingPercentEncoding(withAllowedCharacters: Self.metadataValueCharacters)
      if let value { headers.append(("x-amz-meta-" + m.name.lowercased(), value)) }
    }
    switch precondition {
    case .none: break
    case .indexAbsent: headers.append(("If-None-Match", "*"))
    case .indexHash: if let etag { headers.append(("If-Match", etag)) }
    }
    do {
      try upload([(DocumentName.index.path, data, headers)])
    } catch let e as TsukuError where e.code == .conflict {
      // A retried PUT whose first try went through is refused too: then the bytes are ours.
      if (try? reader.fetch(DocumentName.index.path, maxSize: max(data.count, 1 << 20))) == data { return }
      throw TsukuError(
        .conflict,
        "index.json in '\(location)' changed while publishing (the bucket refused the conditional write); the index was not written, run it again"
      )
    }
    // A bucket that ignores conditional writes: the read-back tells who won.
    let back = try reader.fetch(DocumentName.index.path, maxSize: max(data.count, 1 << 20))
    if back != data {
      throw TsukuError(
        .conflict,
        "index.json in '\(location)' was overwritten by another publisher while publishing; this publish lost, run it again"
      )
    }
  }

  /// Replaces `log/checkpoint` only if it still has the ETag read (`If-Match`), then reads it
  /// back (for buckets that ignore conditional writes): a checkpoint another writer put there
  /// since is never overwritten without this change failing with a `.conflict`.
  private func writeCheckpoint(_ data: Data, etag: String?) throws {
    var headers = [("Cache-Control", Self.documentCacheControl)]
    if let etag { headers.append(("If-Match", etag)) }
    let path = DocumentName.checkpoint.path
    let moved = TsukuError(
      .conflict,
      "log/checkpoint in '\(location)' moved since it was read (a publish or another witness wrote it; the bucket refused the conditional write); nothing was written, run it again"
    )
    do {
      try upload([(path, data, headers)])
    } catch let e as TsukuError where e.code == .conflict {
      if (try? reader.fetch(path, maxSize: max(data.count, 1 << 16))) == data { return }
      throw moved
    }
    if try reader.fetch(path, maxSize: max(data.count, 1 << 16)) != data { throw moved }
  }

  /// Creates each write-once document (a log tile, a change list) only where the bucket has
  /// none (`If-None-Match: *`, immutable once written); one the bucket already holds must hold
  /// the same bytes, else this change is a race loser and stops with a `.conflict`. Each is
  /// read back, for buckets that ignore conditional writes.
  private func writeOnce(_ docs: [(DocumentName, Data)]) throws {
    let headers = [("Cache-Control", Self.immutableCacheControl), ("If-None-Match", "*")]
    for (name, data) in docs {
      do {
        try upload([(name.path, data, headers)])
      } catch let e as TsukuError where e.code == .conflict {
        _ = try writeOnceNeeded(name, existing: try reader.fetch(name.path, maxSize: 1 << 26), new: data, location: location)
        continue
      }
      _ = try writeOnceNeeded(name, existing: try reader.fetch(name.path, maxSize: 1 << 26), new: data, location: location)
    }
  }

  /// PUTs each item and checks what the bucket stored.
  private func upload(_ items: [(String, Data, [(String, String)])]) throws {
    if items.isEmpty { return }
    let requests = try items.map { path, data, extra in
      try reader.request(
        "PUT", path,
        headers: [("Content-Type", "application/octet-stream"), ("Content-MD5", MD5.base64(data))]
          + extra.map { (name: $0.0, value: $0.1) },
        body: data, maxSize: 64 << 10)
    }
    var unconfirmed = [Int]()
    for (i, result) in transport.perform(requests).enumerated() {
      let r = try result.get()
      if !r.isSuccess { throw reader.failure(r, requests[i], writing: true) }
      let tag = r.etag?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
      if tag != MD5.hex(items[i].1) { unconfirmed.append(i) }
    }
    // No MD5 ETag (or another one): the stored size must at least be right.
    if unconfirmed.isEmpty { return }
    let sizes = try reader.size(of: unconfirmed.map { items[$0].0 })
    for (i, size) in zip(unconfirmed, sizes) where size != items[i].1.count {
      throw TsukuError(
        .integrity,
        "'\(location)' stored \(size ?? 0) of the \(items[i].1.count) bytes written to '\(items[i].0)'; the upload was lost"
      )
    }
  }

  /// The stored size of each of `ids` that the bucket has.
  private func existingSizes(_ ids: [ObjectID]) throws -> [ObjectID: Int] {
    if ids.isEmpty { return [:] }
    if ids.count > listThreshold { return try listSizes() }
    var out = [ObjectID: Int]()
    for (id, size) in zip(ids, try reader.size(of: ids.map(\.path))) { out[id] = size }
    return out
  }

  /// Every blob under the prefix and its size, through ListObjectsV2 pages.
  private func listSizes() throws -> [ObjectID: Int] { try listing(.live).mapValues(\.size) }

  /// Every blob of an area with its size and `LastModified`, through ListObjectsV2 pages.
  private func listing(_ area: ObjectArea) throws -> [ObjectID: (size: Int, modified: Date?)] {
    let base = s3.key(area.folder + "/")
    var out = [ObjectID: (size: Int, modified: Date?)]()
    var token: String?
    repeat {
      var query = [("list-type", "2"), ("max-keys", String(listPageSize)), ("prefix", base)]
      if let token { query.append(("continuation-token", token)) }
      let req = try reader.request(
        "GET", url: s3.bucketURL + "/?" + S3Protocol.canonicalQuery(query), maxSize: 64 << 20)
      let r = try transport.perform(req)
      if !r.isSuccess { throw reader.failure(r, req) }
      let xml = String(decoding: r.body, as: UTF8.self)
      for entry in S3Protocol.values("Contents", in: xml) {
        guard let key = S3Protocol.value("Key", in: entry), key.hasPrefix(base) else { continue }
        let rest = key.dropFirst(base.count).split(separator: "/")
        guard rest.count == 2, let id = ObjectID(hex: rest[1]), id.fanout == rest[0] else { continue }
        out[id] = (
          S3Protocol.value("Size", in: entry).flatMap { Int($0) } ?? 0,
          S3Protocol.value("LastModified", in: entry).flatMap(S3Protocol.parseTime)
        )
      }
      let truncated = S3Protocol.value("IsTruncated", in: xml) == "true"
      token = truncated ? S3Protocol.value("NextContinuationToken", in: xml) : nil
      if truncated && token == nil {
        throw TsukuError(.other, "\(req): the listing is truncated but has no continuation token")
      }
    } while token != nil
    return out
  }
}
