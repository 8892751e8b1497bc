import Foundation
import Store

/// Which sources a command uses.
public enum SourceList {
  /// `TSUKU_SOURCES` (`a,b|c`; `off` means none), else `TSUKU_REGISTRY_URL` as a one-source
  /// list, else the configured sources, else the default registry. `offline` means none.
  public static func resolve(env: [String: String], config: Config?, offline: Bool) throws -> SourceChain {
    if offline { return .off }
    if let s = env["TSUKU_SOURCES"], !s.trimmingCharacters(in: .whitespaces).isEmpty {
      return try SourceChain.parse(s)
    }
    if let u = env["TSUKU_REGISTRY_URL"], !u.isEmpty { return SourceChain([u]) }
    if let c = config, !c.sources.isEmpty { return try SourceChain.parse(c.sources.joined(separator: ",")) }
    return DefaultRegistry.sourceIfAny(env).map { SourceChain([$0]) } ?? .unconfigured
  }
}
