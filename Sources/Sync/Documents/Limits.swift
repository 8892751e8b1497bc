import Foundation
import Store

/// The format version every document carries.
public enum Format {
  public static let current = 1
}

/// Size limits on documents, checked before anything is parsed.
public enum Limits {
  public static let indexFile = 64 * 1024
  public static let root = 512 * 1024
  public static let maxRootRotations = 256
}
