import Foundation
import Store

/// Which sources a command uses.
public enum SourceList {
  /// `TSUKU_SOURCES` (`a,b|c`; `off` means none), else `TSUKU_REGISTRY_URL` as a one-source
  /// list, else the configured sources, else the default registry. `offline` means none.
  public static func resolve(env: [String: String], config: Config?, offline: Bool) throws -> SourceChain {
    if offline {
      var c = SourceChain.off
      c.emptyReason = "no sources with --offline: run it without --offline to ask the sources"
      return c
    }
    if let s = env["TSUKU_SOURCES"], !s.trimmedASCII.isEmpty {
      var c = try SourceChain.parse(s)
      if c.isEmpty {
        c.emptyReason =
          "no sources: TSUKU_SOURCES is '\(s)'; unset it (or set it to a registry URL) to ask the sources"
      }
      return c
    }
    if let u = env["TSUKU_REGISTRY_URL"], !u.isEmpty { return SourceChain([u]) }
    if let c = config, !c.sources.isEmpty { return try SourceChain.parse(c.sources.joined(separator: ",")) }
    return DefaultRegistry.sourceIfAny(env).map { SourceChain([$0]) } ?? .unconfigured
  }
}
