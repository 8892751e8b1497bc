/// The settings `tsuku init` writes.
public struct Config: Sendable, Equatable {
  public var sources: [String] = []
  public init(sources: [String] = []) { self.sources = sources }
}
