import Foundation
import Store

/// What a valid recipe says about itself, read from its `[metadata]` table.
public struct RecipeInfo: Equatable, Sendable {
  public var name: String
  public var description: String
  public var homepage: String
  /// "tool" or "library".
  public var type: String
  public var dependencies: [String]
  public var runtimeDependencies: [String]

  public init(
    name: String, description: String = "", homepage: String = "", type: String = "tool",
    dependencies: [String] = [], runtimeDependencies: [String] = []
  ) {
    self.name = name
    self.description = description
    self.homepage = homepage
    self.type = type
    self.dependencies = dependencies
    self.runtimeDependencies = runtimeDependencies
  }
}

/// Checks a recipe file against tsuku's rules: UTF-8 TOML, a `[metadata]` name that matches
/// the file name, at least one `[[steps]]` entry, each with an `action`, and a `[verify]`
/// command unless the recipe is a library.
public enum RecipeFile {
  /// Validates a recipe and returns its metadata; throws a `.usage` error naming `fileName`.
  public static func validate(_ data: Data, fileName: String) throws -> RecipeInfo {
    func problem(_ text: String) -> TsukuError { TsukuError(.usage, "\(displayLine(fileName)): \(text)") }
    guard let text = utf8String(data) else { throw problem("not valid utf-8") }
    let doc: [String: TOMLValue]
    do {
      doc = try TOML.parse(text)
    } catch {
      throw problem(error.description)
    }
    guard let metaValue = doc["metadata"] else { throw problem("missing [metadata] table") }
    guard let meta = metaValue.tableValue else { throw problem("'metadata' is not a table") }
    guard let nameValue = meta["name"] else { throw problem("metadata.name is missing") }
    guard let name = nameValue.stringValue else { throw problem("metadata.name is not a string") }
    var expected = Substring(fileName.split(separator: "/").last ?? "")
    if expected.hasSuffix(".toml") { expected = expected.dropLast(5) }
    guard name == expected else {
      throw problem(
        "metadata.name \(displayQuoted(name)) does not match the file name \(displayQuoted(String(expected)))")
    }

    func string(_ key: String) throws -> String {
      guard let value = meta[key] else { return "" }
      guard let s = value.stringValue else { throw problem("metadata.\(key) is not a string") }
      return s
    }
    func strings(_ key: String) throws -> [String] {
      guard let value = meta[key] else { return [] }
      guard let list = value.arrayValue?.compactMap(\.stringValue), list.count == value.arrayValue?.count
      else { throw problem("metadata.\(key) is not an array of strings") }
      return list
    }
    var info = RecipeInfo(
      name: name, description: try string("description"), homepage: try string("homepage"),
      type: try string("type"), dependencies: try strings("dependencies"),
      runtimeDependencies: try strings("runtime_dependencies"))
    switch info.type {
    case "", "tool": info.type = "tool"
    case "library": break
    default: throw problem("metadata.type \(displayQuoted(info.type)) is not 'tool' or 'library'")
    }

    guard let stepsValue = doc["steps"] else { throw problem("no [[steps]] entries") }
    guard let steps = stepsValue.arrayValue else { throw problem("'steps' is not an array of tables") }
    guard !steps.isEmpty else { throw problem("no [[steps]] entries") }
    for (n, step) in steps.enumerated() {
      guard let table = step.tableValue else { throw problem("steps entry \(n + 1) is not a table") }
      guard let action = table["action"]?.stringValue, !action.isEmpty else {
        throw problem("steps entry \(n + 1) has no string 'action'")
      }
    }

    let verify = doc["verify"]
    if let verify, verify.tableValue == nil { throw problem("'verify' is not a table") }
    if info.type != "library" {
      guard let verify else { throw problem("missing [verify] table") }
      guard let command = verify.tableValue?["command"]?.stringValue,
        !command.allSatisfy(\.isWhitespace)
      else { throw problem("verify.command is missing or empty") }
    }
    return info
  }

  /// The text of `data` if it is valid UTF-8; decoding repairs bad bytes, so a round trip
  /// that changes nothing proves validity.
  static func utf8String(_ data: Data) -> String? {
    let text = String(decoding: data, as: UTF8.self)
    return text.utf8.elementsEqual(data) ? text : nil
  }
}

/// Where a golden plan file sits and what it is for.
public struct GoldenInfo: Equatable, Sendable {
  public var tool: String
  public var version: String
  /// "os-arch" or "os-family-arch", for example "linux-amd64" or "linux-debian-amd64".
  public var platform: String
  /// Set when the plan's own version or platform disagrees with its name (the name wins).
  public var note: String?

  public init(tool: String, version: String, platform: String, note: String? = nil) {
    self.tool = tool
    self.note = note
    self.version = version
    self.platform = platform
  }
}

/// Checks a golden plan file: JSON at `<tool>/v<version>-<platform>.json` whose `tool`,
/// `version` and `platform` agree with its path.
public enum GoldenFile {
  /// The Linux families a platform may name between the OS and the architecture.
  public static let families: Set<String> = ["debian", "rhel", "arch", "alpine", "suse"]
  /// The operating systems a platform may start with.
  public static let systems: Set<String> = ["linux", "darwin", "windows", "freebsd"]

  /// Validates a golden file and returns what its path and content agree on; throws a
  /// `.usage` error naming `path`.
  public static func validate(_ data: Data, path: String) throws -> GoldenInfo {
    func problem(_ text: String) -> TsukuError { TsukuError(.usage, "\(displayLine(path)): \(text)") }
    let parts = path.split(separator: "/")
    guard parts.count >= 2, let last = parts.last, last.hasPrefix("v"), last.hasSuffix(".json"),
      last.count > 6
    else { throw problem("expected a path ending '<tool>/v<version>-<platform>.json'") }
    let fileName = String(last)
    let folder = String(parts[parts.count - 2])

    let object: Any
    do {
      object = try JSONSerialization.jsonObject(with: data)
    } catch {
      throw problem("not valid json")
    }
    guard let plan = object as? [String: Any] else { throw problem("not a json object") }
    guard let tool = plan["tool"] as? String, !tool.isEmpty else { throw problem("missing string 'tool'") }
    guard tool == folder else {
      throw problem("tool \(displayQuoted(tool)) does not match the folder name \(displayQuoted(folder))")
    }
    guard let version = plan["version"] as? String, !version.isEmpty else {
      throw problem("missing string 'version'")
    }

    // The plan's own platform object, when it has one.
    var fromPlan: String?
    if let platformValue = plan["platform"], !(platformValue is NSNull) {
      guard let platformObject = platformValue as? [String: Any] else {
        throw problem("'platform' is not an object")
      }
      func field(_ key: String, required: Bool) throws -> String? {
        guard let value = platformObject[key], !(value is NSNull) else {
          if required { throw problem("missing string 'platform.\(key)'") }
          return nil
        }
        guard let s = value as? String, isWord(s) else {
          throw problem("platform.\(key) is not a lower-case word")
        }
        return s
      }
      let os = try field("os", required: true) ?? ""
      let arch = try field("arch", required: true) ?? ""
      let family = try field("linux_family", required: false)
      fromPlan = [os, family, arch].compactMap { $0 }.joined(separator: "-")
    }
    // The name is what the registry's readers look up, so it decides when it parses; a plan
    // that disagrees (older generators wrote "version": "dev", or left out linux_family) is
    // accepted with a note, which publish reports.
    if let (nameVersion, namePlatform) = splitName(fileName) {
      var notes = [String]()
      if nameVersion != version { notes.append("version \(displayQuoted(version))") }
      if let p = fromPlan, p != namePlatform { notes.append("platform \(displayQuoted(p))") }
      let note = notes.isEmpty ? nil : "\(displayLine(path)): the name says \(displayQuoted(nameVersion)) on \(displayQuoted(namePlatform)) but the plan has \(notes.joined(separator: " and ")); indexed by its name"
      return GoldenInfo(tool: tool, version: nameVersion, platform: namePlatform, note: note)
    }
    guard let platform = fromPlan else {
      throw problem("cannot read a platform from the file name \(displayQuoted(fileName))")
    }
    let expected = "v\(version)-\(platform).json"
    guard fileName == expected else {
      throw problem("file name \(displayQuoted(fileName)) should be \(displayQuoted(expected))")
    }
    return GoldenInfo(tool: tool, version: version, platform: platform)
  }

  /// Splits `v<version>-<platform>.json` from the right: the architecture, then an optional
  /// Linux family, then the OS; whatever is left is the version.
  static func splitName(_ fileName: String) -> (version: String, platform: String)? {
    guard fileName.hasPrefix("v"), fileName.hasSuffix(".json") else { return nil }
    var parts = fileName.dropFirst().dropLast(5).split(separator: "-", omittingEmptySubsequences: false)
      .map(String.init)
    guard parts.count >= 3, let arch = parts.popLast(), isWord(arch) else { return nil }
    var platform = [arch]
    if parts.count >= 3, families.contains(parts[parts.count - 1]), parts[parts.count - 2] == "linux",
      let family = parts.popLast()
    {
      platform.insert(family, at: 0)
    }
    guard let os = parts.popLast(), systems.contains(os), !parts.isEmpty else { return nil }
    platform.insert(os, at: 0)
    let version = parts.joined(separator: "-")
    guard !version.isEmpty else { return nil }
    return (version, platform.joined(separator: "-"))
  }

  /// A non-empty run of lower-case letters, digits and underscores.
  static func isWord(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
  }
}

/// A path or file name for a message, with control characters escaped (how the validators
/// name a file, so a report can take the name off their messages).
func displayLine(_ s: String) -> String {
  let quoted = displayQuoted(s)
  return String(quoted.dropFirst().dropLast())
}
