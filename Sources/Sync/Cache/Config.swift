/// The settings `tsuku init` writes.
public struct Config: Sendable, Equatable {
  public var sources: [String] = []
  /// The witnesses whose cosignatures of the log's checkpoint this home counts, as C2SP
  /// verifier keys of type 0x04 ("name+hash+key").
  public var witnesses: [String] = []
  /// How many of `witnesses` must have cosigned a checkpoint for a sync to accept it (0: none).
  public var witnessQuorum: Int = 0

  public init(sources: [String] = [], witnesses: [String] = [], witnessQuorum: Int = 0) {
    self.sources = sources
    self.witnesses = witnesses
    self.witnessQuorum = witnessQuorum
  }
}
