import Foundation
import Store

/// One entry of an exclusions file: a recipe (on one platform, or on all) that is allowed to
/// lack golden files, and why.
public struct GoldenExclusion: Sendable, Equatable, Codable {
  public var recipe: String
  /// `os-arch` or `os-family-arch`; nil: every platform.
  public var platform: String?
  public var reason: String
  public var issue: String?
}

/// The exclusions file of `registry validate --exclusions FILE`: JSON, the shape tsuku's own
/// `registry/golden/exclusions.json` has, so that file works as it is:
///
/// ```json
/// {"exclusions": [
///   {"recipe": "nodejs", "reason": "no golden files yet", "issue": "https://github.com/o/r/issues/1"},
///   {"recipe": "brotli", "platform": {"os": "darwin", "arch": "arm64"}, "reason": "library"},
///   {"recipe": "bash", "platform": "darwin-amd64", "reason": "linux only"}
/// ]}
/// ```
///
/// `recipe` and a one-line, non-empty `reason` are required; `platform` is an object (`os`,
/// `arch`, optional `linux_family`) or a string (`linux-amd64`), absent for every platform;
/// `issue` and any other field (`$schema`, `description`) are free.
public struct GoldenExclusions: Sendable, Equatable {
  public var entries: [GoldenExclusion]

  public init(_ entries: [GoldenExclusion] = []) { self.entries = entries }

  public static func read(_ path: String) throws -> GoldenExclusions {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw TsukuError(.usage, "cannot read exclusions file '\(path)'")
    }
    return try parse(data, what: "exclusions file '\(path)'")
  }

  public static func parse(_ data: Data, what: String) throws -> GoldenExclusions {
    guard let top = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw TsukuError(.usage, "\(what) is not a JSON object")
    }
    guard let list = top["exclusions"] as? [Any] else {
      throw TsukuError(.usage, "\(what) has no 'exclusions' array")
    }
    var out = [GoldenExclusion]()
    for (n, item) in list.enumerated() {
      func bad(_ why: String) -> TsukuError { TsukuError(.usage, "\(what), exclusion \(n + 1): \(why)") }
      guard let e = item as? [String: Any] else { throw bad("not an object") }
      guard let recipe = e["recipe"] as? String, !recipe.isEmpty else { throw bad("missing string 'recipe'") }
      guard let reason = e["reason"] as? String, !reason.trimmingCharacters(in: .whitespaces).isEmpty,
        !reason.contains("\n")
      else { throw bad("'\(recipe)' needs a one-line 'reason'") }
      var platform: String?
      switch e["platform"] {
      case nil, is NSNull: break
      case let s as String:
        guard GoldenCoverage.isPlatform(s) else { throw bad("invalid platform '\(s)': expected os-arch or os-family-arch") }
        platform = s
      case let o as [String: Any]:
        guard let os = o["os"] as? String, let arch = o["arch"] as? String else {
          throw bad("platform of '\(recipe)' needs 'os' and 'arch'")
        }
        let p = [os, o["linux_family"] as? String, arch].compactMap { $0 }.joined(separator: "-")
        guard GoldenCoverage.isPlatform(p) else { throw bad("invalid platform '\(p)'") }
        platform = p
      default: throw bad("'platform' is neither an object nor a string")
      }
      out.append(GoldenExclusion(recipe: recipe, platform: platform, reason: reason, issue: e["issue"] as? String))
    }
    return GoldenExclusions(out)
  }

  /// The exclusion that covers `recipe` on `platform`, if any (an exact platform first).
  public func match(_ recipe: String, _ platform: String) -> GoldenExclusion? {
    entries.first { $0.recipe == recipe && $0.platform == platform } ?? entries.first { $0.recipe == recipe && $0.platform == nil }
  }
}

/// Which platforms a recipe must have golden files for, from its `[metadata]`, and whether
/// its golden refs cover them.
///
/// A recipe needs one golden file per platform of the required list (default
/// `linux-amd64`, `darwin-amd64`, `darwin-arm64`: the platforms tsuku generates golden files
/// for), less the ones its metadata rules out: `supported_os` and `supported_arch` keep only
/// the listed systems and architectures; `unsupported_platforms` (`"darwin/arm64"`) drops
/// those (an entry naming a libc, `"linux/arm64/musl"`, drops nothing: golden files are not
/// per libc). A required `os-arch` is covered by a golden file for exactly that platform or
/// for any Linux family on it (`linux-debian-amd64` covers `linux-amd64`); a required
/// `os-family-arch` only by that platform.
public enum GoldenCoverage {
  public static let defaultPlatforms = ["linux-amd64", "darwin-amd64", "darwin-arm64"]

  /// `os-arch` or `os-family-arch` with a known system (and family).
  public static func isPlatform(_ p: String) -> Bool {
    let parts = p.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
    guard parts.allSatisfy(GoldenFile.isWord), GoldenFile.systems.contains(parts.first ?? "") else { return false }
    if parts.count == 2 { return true }
    return parts.count == 3 && parts[0] == "linux" && GoldenFile.families.contains(parts[1])
  }

  /// The platforms of `required` that the recipe's metadata supports. A recipe that does not
  /// parse keeps them all (publish validated it, so this does not happen for published ones).
  public static func supported(recipe data: Data, required: [String]) -> [String] {
    guard let text = String(data: data, encoding: .utf8), let doc = try? TOML.parse(text),
      let meta = doc["metadata"]?.tableValue
    else { return required }
    func list(_ key: String) -> [String]? { meta[key]?.arrayValue?.compactMap(\.stringValue) }
    let oses = list("supported_os")
    let arches = list("supported_arch")
    let unsupported = Set((list("unsupported_platforms") ?? []).compactMap { entry -> String? in
      let parts = entry.split(separator: "/").map(String.init)
      return parts.count == 2 ? parts.joined(separator: "-") : parts.count == 1 ? parts[0] : nil
    })
    return required.filter { p in
      let parts = p.split(separator: "-").map(String.init)
      let (os, arch) = (parts.first ?? "", parts.last ?? "")
      if let oses, !oses.contains(os) { return false }
      if let arches, !arches.contains(arch) { return false }
      return !unsupported.contains("\(os)-\(arch)") && !unsupported.contains(os)
    }
  }

  /// Whether the golden refs cover a required platform.
  public static func covers(_ golden: [GoldenRef], _ platform: String) -> Bool {
    let parts = platform.split(separator: "-")
    return golden.contains { g in
      if g.platform == platform { return true }
      guard parts.count == 2 else { return false }
      let gp = g.platform.split(separator: "-")
      return gp.count == 3 && gp[0] == parts[0] && gp[2] == parts[1]
    }
  }
}
