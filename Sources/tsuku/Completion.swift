import ArgumentParser
import Foundation
import Store
import Sync

/// Shell completion of recipe names: the names of the cached index (or the built-in critical
/// set), read offline, never contacting a source, never recording an event. A completion that
/// cannot read the cache offers nothing rather than failing.
enum RecipeNames {
  static let completion = CompletionKind.custom { _, _, prefix in names(prefix: prefix) }

  static func names(prefix: String) -> [String] {
    let env = ProcessEnvironment.current
    guard let policy = try? CachePolicy.fromEnvironment(env) else { return [] }
    let client = Client(home: Home.fromEnvironment(env), chain: .off, policy: policy, now: Date(), warn: { _ in })
    let all = (try? client.entries().map(\.name)) ?? EmbeddedSet.entries.map(\.name)
    return all.filter { $0.hasPrefix(prefix) }
  }
}
