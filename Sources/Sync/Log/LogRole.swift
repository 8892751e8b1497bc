import Foundation
import Store

/// The root's `log` role: the keys whose note signatures make a checkpoint, and its origin.
public enum LogRole {
  /// The origin a new log gets when none is given: names the log by its first key.
  public static func defaultOrigin(_ keys: RoleKeys?) -> String? {
    keys.flatMap { $0.keyids.sorted().first }.map { "tsuku-registry-log/" + $0.prefix(16) }
  }

  /// Whether `root` has a transparency log.
  public static func enabled(_ root: RootPayload) -> Bool { root.roles[Role.log.rawValue] != nil && root.log_origin != nil }
}
