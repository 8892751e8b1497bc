import Foundation
import Store

/// The layout today's Go tsuku client reads a registry in: recipes at
/// `recipes/<first character>/<name>.toml`, the index `recipes.json` (at `_site/recipes.json`
/// for a local base), golden files in the bucket's `plans/` layout. `registry export` writes it
/// and `serve` answers it; both produce it only from verified blobs.
public enum GoLayout {
  /// "recipes/f/fzf.toml": every recipe, critical and community alike.
  public static func recipePath(_ name: String) -> String {
    "recipes/\(name.prefix(1))/\(name).toml"
  }

  /// "plans/embedded/go/v1.22.0/linux-amd64.json" for a critical recipe,
  /// "plans/f/fzf/v0.56.3/linux-amd64.json" for a community one.
  public static func planPath(name: String, category: Category, version: String, platform: String) -> String {
    "plans/\(planPrefix(name: name, category: category))/\(name)/v\(version)/\(platform).json"
  }

  /// The folder a recipe's golden files sit under: `embedded` or the first character.
  public static func planPrefix(name: String, category: Category) -> String {
    category == .critical ? "embedded" : String(name.prefix(1))
  }

  /// Where the Go client reads `recipes.json`: `_site/recipes.json` for a local base, and
  /// `recipes.json` at the root for a `TSUKU_MANIFEST_URL` next to the recipes.
  public static let manifestPaths = ["_site/recipes.json", "recipes.json"]

  /// What a request path names.
  public enum Route: Equatable, Sendable {
    case recipe(name: String)
    /// A golden file; `prefix` is the folder as requested (`embedded` or a first character),
    /// `version` without its leading `v`.
    case plan(name: String, prefix: String, version: String, platform: String)
    case manifest
  }

  /// The route of a request path such as `/recipes/f/fzf.toml` (query removed, not
  /// percent-decoded). Returns nil for a path outside the layout. Throws a usage error for a
  /// path that could reach outside it or names something no registry can hold: a `%`, `..`,
  /// an empty segment, a backslash, a control byte, an invalid recipe name, or a letter folder
  /// that is not the name's first character.
  public static func route(_ path: String) throws -> Route? {
    // The common request, /recipes/<c>/<name>.toml with a valid name, without building a
    // list of segments; anything else takes the general path below.
    if let name = fastRecipe(path) { return .recipe(name: name) }
    let bytes = Array(path.utf8)
    func refuse(_ why: String) -> TsukuError {
      TsukuError(.usage, "refused path '\(displayPath(path))': \(why)")
    }
    guard bytes.count <= 1024 else { throw refuse("longer than 1024 bytes") }
    guard bytes.first == UInt8(ascii: "/") else { throw refuse("does not start with '/'") }
    var previous: UInt8 = 0
    for b in bytes {
      if b < 0x20 || b == 0x7f || b >= 0x80 { throw refuse("control or non-ASCII byte") }
      if b == UInt8(ascii: "%") { throw refuse("percent-encoded bytes are not part of the layout") }
      if b == UInt8(ascii: "\\") { throw refuse("backslash") }
      if b == UInt8(ascii: ".") && previous == UInt8(ascii: ".") { throw refuse("dot segment") }
      previous = b
    }
    if bytes.count == 1 { return nil }
    let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    if parts.contains(where: { $0.isEmpty }) { throw refuse("empty segment") }
    if parts.contains(where: { $0 == "." }) { throw refuse("dot segment") }

    if parts == ["recipes.json"] || parts == ["_site", "recipes.json"] { return .manifest }
    switch parts.first {
    case "recipes":
      guard parts.count == 3, parts[2].hasSuffix(".toml") else { return nil }
      let name = String(parts[2].dropLast(5))
      try RecipeName.validate(name)
      guard parts[1] == String(name.prefix(1)) else {
        throw refuse("folder '\(parts[1])' is not the first character of '\(name)'")
      }
      return .recipe(name: name)
    case "plans":
      guard parts.count == 5, parts[4].hasSuffix(".json"), parts[3].hasPrefix("v"), parts[3].count > 1 else {
        return nil
      }
      let name = parts[2]
      try RecipeName.validate(name)
      guard parts[1] == "embedded" || parts[1] == String(name.prefix(1)) else {
        throw refuse("folder '\(parts[1])' is neither 'embedded' nor the first character of '\(name)'")
      }
      let version = String(parts[3].dropFirst())
      let platform = String(parts[4].dropLast(5))
      for (what, value) in [("version", version), ("platform", platform)] {
        guard !value.isEmpty, value.utf8.allSatisfy(isTokenByte) else { throw refuse("invalid \(what) '\(value)'") }
      }
      return .plan(name: name, prefix: parts[1], version: version, platform: platform)
    default:
      return nil
    }
  }

  /// The name of `/recipes/<c>/<name>.toml` when the path is exactly that, `<c>` is the
  /// name's first character and the name is valid (RecipeName's rules); else nil.
  static func fastRecipe(_ path: String) -> String? {
    var path = path
    return path.withUTF8 { p -> String? in
      // "/recipes/" + c + "/" + name + ".toml"
      let prefix: [UInt8] = Array("/recipes/".utf8)
      let n = p.count
      guard n > prefix.count + 2 + 5, n <= 9 + 2 + 128 + 5 else { return nil }
      for i in 0..<prefix.count where p[i] != prefix[i] { return nil }
      let c = p[9]
      guard p[10] == UInt8(ascii: "/"), p[11] == c else { return nil }
      let end = n - 5
      guard p[end] == UInt8(ascii: "."), p[end + 1] == UInt8(ascii: "t"), p[end + 2] == UInt8(ascii: "o"),
        p[end + 3] == UInt8(ascii: "m"), p[end + 4] == UInt8(ascii: "l")
      else { return nil }
      guard (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) else { return nil }
      var previous: UInt8 = 0
      for i in 11..<end {
        let b = p[i]
        let ok =
          (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
          || b == UInt8(ascii: "-") || b == UInt8(ascii: "+")
        if !ok || (b == UInt8(ascii: ".") && previous == UInt8(ascii: ".")) { return nil }
        previous = b
      }
      return String(decoding: UnsafeBufferPointer(rebasing: p[11..<end]), as: UTF8.self)
    }
  }

  /// Letters, digits and `. _ - +`: what versions and platforms are made of.
  private static func isTokenByte(_ c: UInt8) -> Bool {
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".")
      || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
  }

  private static func displayPath(_ path: String) -> String {
    String(
      path.unicodeScalars.prefix(200).map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) })
  }

  /// One entry of `recipes.json`.
  public struct ManifestRecipe: Equatable, Sendable {
    public var name: String
    public var description: String
    public var homepage: String
    public var dependencies: [String]
    public var runtimeDependencies: [String]
    /// Ecosystem → names (`aliases` included); left out of the JSON when empty.
    public var satisfies: [String: [String]]
    /// The ecosystems in the order the recipe lists them, which is the order tsuku's generator
    /// writes them in; any not listed here follow, sorted.
    public var satisfiesOrder: [String] = []

    public init(
      name: String, description: String = "", homepage: String = "", dependencies: [String] = [],
      runtimeDependencies: [String] = [], satisfies: [String: [String]] = [:]
    ) {
      self.name = name
      self.description = description
      self.homepage = homepage
      self.dependencies = dependencies
      self.runtimeDependencies = runtimeDependencies
      self.satisfies = satisfies
    }
  }

  /// The `recipes.json` entry of a verified recipe, from its `[metadata]` table; nil when the
  /// recipe has no `[metadata]` with a string `name`. Values of the wrong type read as empty.
  public static func manifestRecipe(_ toml: Data) -> ManifestRecipe? {
    guard let text = String(data: toml, encoding: .utf8), let doc = try? TOML.parse(text),
      let meta = doc["metadata"]?.tableValue, let name = meta["name"]?.stringValue
    else { return nil }
    func strings(_ v: TOMLValue?) -> [String] { v?.arrayValue?.compactMap(\.stringValue) ?? [] }
    var satisfies: [String: [String]] = [:]
    for (ecosystem, names) in meta["satisfies"]?.tableValue ?? [:] {
      let list = strings(names)
      if !list.isEmpty { satisfies[ecosystem] = list }
    }
    var r = ManifestRecipe(
      name: name, description: meta["description"]?.stringValue ?? "",
      homepage: meta["homepage"]?.stringValue ?? "", dependencies: strings(meta["dependencies"]),
      runtimeDependencies: strings(meta["runtime_dependencies"]), satisfies: satisfies)
    r.satisfiesOrder = satisfiesKeyOrder(text).filter { satisfies[$0] != nil }
    return r
  }

  /// The keys of the `[metadata.satisfies]` table (or a `satisfies = { ... }` inline table) in
  /// the order the text writes them; the parsed table has no order.
  static func satisfiesKeyOrder(_ text: String) -> [String] {
    var keys = [String]()
    var inTable = false
    func add(_ key: Substring) {
      var k = key.trimmingCharacters(in: .whitespaces)
      if k.count >= 2, let f = k.first, f == "\"" || f == "'", k.last == f { k = String(k.dropFirst().dropLast()) }
      if !k.isEmpty, !keys.contains(k) { keys.append(k) }
    }
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
      let line = raw.trimmingCharacters(in: .whitespaces)
      if line.hasPrefix("[") {
        inTable = line.replacingOccurrences(of: " ", with: "") == "[metadata.satisfies]"
        continue
      }
      if inTable, let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
        add(line[..<eq])
      } else if !inTable, line.hasPrefix("satisfies"), let open = line.firstIndex(of: "{") {
        // satisfies = { homebrew = ["x"], aliases = ["y"] } inside [metadata]
        var depth = 0
        var start = line.index(after: open)
        var i = start
        while i < line.endIndex {
          let c = line[i]
          if c == "[" { depth += 1 }
          if c == "]" { depth -= 1 }
          if c == "=" && depth == 0 { add(line[start..<i]) }
          if c == "," && depth == 0 { start = line.index(after: i) }
          i = line.index(after: i)
        }
      }
    }
    return keys
  }

  /// `recipes.json` as tsuku's generator writes it: `schema_version` 1, `generated_at` in UTC
  /// to the second (`+00:00`), the recipes sorted by lower-cased name; two-space indent,
  /// ASCII only (`\uXXXX` escapes), a trailing newline.
  public static func manifest(_ recipes: [ManifestRecipe], generatedAt: Date) -> Data {
    let sorted = recipes.enumerated().sorted {
      let a = $0.element.name.lowercased()
      let b = $1.element.name.lowercased()
      return a != b ? a < b : $0.offset < $1.offset
    }.map(\.element)
    var out = "{\n  \"schema_version\": 1,\n  \"generated_at\": \(quote(timestamp(generatedAt))),\n  \"recipes\": "
    if sorted.isEmpty {
      out += "[]"
    } else {
      out += "[\n"
      for (i, r) in sorted.enumerated() {
        var fields: [(String, String)] = [
          ("name", quote(r.name)), ("description", quote(r.description)), ("homepage", quote(r.homepage)),
          ("dependencies", list(r.dependencies, indent: 6)),
          ("runtime_dependencies", list(r.runtimeDependencies, indent: 6)),
        ]
        if !r.satisfies.isEmpty {
          let listed = r.satisfiesOrder.filter { r.satisfies[$0] != nil }
          let keys = listed + r.satisfies.keys.filter { !listed.contains($0) }.sorted()
          let body = keys.map { "        \(quote($0)): \(list(r.satisfies[$0]!, indent: 8))" }
          fields.append(("satisfies", "{\n" + body.joined(separator: ",\n") + "\n      }"))
        }
        out += "    {\n" + fields.map { "      \(quote($0.0)): \($0.1)" }.joined(separator: ",\n") + "\n    }"
        out += i == sorted.count - 1 ? "\n" : ",\n"
      }
      out += "  ]"
    }
    out += "\n}\n"
    return Data(out.utf8)
  }

  /// A JSON array of strings the way Python's `json.dump(indent=2)` lays it out at `indent`.
  private static func list(_ items: [String], indent: Int) -> String {
    if items.isEmpty { return "[]" }
    let pad = String(repeating: " ", count: indent + 2)
    return "[\n" + items.map { pad + quote($0) }.joined(separator: ",\n") + "\n" + String(repeating: " ", count: indent) + "]"
  }

  /// A JSON string with Python's `ensure_ascii` escaping.
  static func quote(_ s: String) -> String {
    var out = "\""
    for u in s.utf16 {
      switch u {
      case 0x22: out += "\\\""
      case 0x5c: out += "\\\\"
      case 0x0a: out += "\\n"
      case 0x0d: out += "\\r"
      case 0x09: out += "\\t"
      case 0x08: out += "\\b"
      case 0x0c: out += "\\f"
      case 0x20..<0x7f: out.unicodeScalars.append(Unicode.Scalar(u)!)
      default:
        let hex = String(u, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      }
    }
    return out + "\""
  }

  /// `2026-08-13T10:00:00+00:00`: Python's `datetime.now(timezone.utc).isoformat(timespec="seconds")`.
  static func timestamp(_ date: Date) -> String {
    var t = time_t(date.timeIntervalSince1970.rounded(.down))
    var tm = tm()
    gmtime_r(&t, &tm)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d+00:00", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
  }
}
