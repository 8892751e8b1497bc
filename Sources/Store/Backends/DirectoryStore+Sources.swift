import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

extension DirectoryStore {
  /// Sources in batches (see `ObjectWriter.applyInBatches`); a blob is present when its file
  /// exists with the right size, as `apply` decides, so present blobs are never read.
  @discardableResult
  public func apply(_ change: StoreChange, sources: [BlobSource]) throws -> ApplyReport {
    try applyInBatches(change, sources: sources) { s in
      var st = stat()
      return stat(root + "/" + s.id.path, &st) == 0 && Int(st.st_size) == s.size
    }
  }
}
