import Foundation
import Store

/// `$TSUKU_HOME/config.toml` is shared with the Go tsuku client, which keeps its own settings
/// there (`telemetry`, `auto_install_mode`, `strict_registries`, `[llm]`, `[secrets]`,
/// `[updates]`, `[registries."owner/repo"]`). This program's settings live in a table of their
/// own, `[recipe_store]`, a name the Go client does not use, and are edited in place: every
/// other byte of the file (keys, tables, arrays of tables, comments, order, line endings) is
/// kept as it was.
///
/// Before this table existed, `sources`, `witnesses` and `witness_quorum` were written at the
/// top level. They are still read when the table is absent, and the first write moves them
/// into the table.
public enum ConfigFile {
  /// This program's table.
  public static let table = "recipe_store"
  /// The keys this program writes in its table (and, in the old form, at the top level).
  static let ownKeys: Set<String> = ["sources", "witnesses", "witness_quorum"]

  static let comments = [
    "# tsuku recipe store: written by 'tsuku init' (the Go tsuku client ignores this table).",
    "# TSUKU_SOURCES overrides sources for one command. Like GOPROXY: after ',' the next source",
    "# is tried only when this one lacks the thing, after '|' on any failure.",
  ]
  static let witnessComment = "# a log checkpoint needs cosignatures from witness_quorum of these witnesses"
  /// The comment lines the old top-level form had, removed with its keys.
  static let legacyComments: Set<String> = [
    "# written by 'tsuku init'; TSUKU_SOURCES overrides it for one command.",
    "# Like GOPROXY: after ',' the next source is tried only when this one lacks the thing,",
    "# after '|' on any failure.",
    witnessComment,
  ]

  /// The settings in a parsed document: the `[recipe_store]` table, else the old top-level keys.
  public static func config(from root: [String: TOMLValue]) -> Config {
    let t = root[table]?.tableValue ?? root
    var c = Config()
    switch t["sources"] {
    case .array(let list)?: c.sources = list.compactMap(\.stringValue)
    case .string(let s)?: c.sources = [s]
    default: break
    }
    if case .array(let list)? = t["witnesses"] { c.witnesses = list.compactMap(\.stringValue) }
    if case .integer(let n)? = t["witness_quorum"] { c.witnessQuorum = Int(clamping: n) }
    return c
  }

  /// Parses `data` (the file at `path`); an error names the file and the line.
  public static func parse(_ data: Data, path: String) throws -> [String: TOMLValue] {
    guard let text = String(data: data, encoding: .utf8) else {
      throw TsukuError(.usage, "'\(path)' is not UTF-8 text; it was not changed (fix it or move it away)")
    }
    do { return try TOML.parse(text) } catch {
      throw TsukuError(.usage, "'\(path)': line \(error.line): \(error.message); it was not changed (fix it or move it away)")
    }
  }

  /// `old` (the file's bytes, nil when there is none) with this program's table set to `c`.
  /// Everything else is kept byte for byte; the result is checked by parsing it again: every
  /// other key and table must read as before, and the table must read back as `c`.
  public static func edit(_ old: Data?, with c: Config, path: String) throws -> Data {
    let bytes = [UInt8](old ?? Data())
    let before = try parse(Data(bytes), path: path)
    let crlf = bytes.firstIndex(of: 0x0A).map { $0 > 0 && bytes[$0 - 1] == 0x0D } ?? false
    let eol: [UInt8] = crlf ? [0x0D, 0x0A] : [0x0A]
    let block = render(c).flatMap { Array($0.utf8) + eol }
    var out = [UInt8]()
    var inOwn = false
    var wroteOwn = false
    var inRoot = true
    for s in TOMLStatements.split(bytes) {
      switch s.kind {
      case .header(let path, let array):
        inRoot = false
        inOwn = !array && path == [table]
        out += s.text
        if inOwn {
          if s.text.last != 0x0A { out += eol }
          out += block
          wroteOwn = true
        }
      case .keyValue(let key):
        if (inOwn || inRoot) && key.count == 1 && ownKeys.contains(key[0]) { continue }
        out += s.text
      case .trivia:
        let line = String(decoding: s.text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if inOwn && (comments.contains(line) || line == witnessComment) { continue }
        if inRoot && legacyComments.contains(line) { continue }
        out += s.text
      }
    }
    if !wroteOwn {
      if !out.isEmpty && out.last != 0x0A { out += eol }
      if !out.isEmpty && !endsWithBlankLine(out) { out += eol }
      out += Array("[\(table)]".utf8) + eol + block
    }
    let result = Data(out)
    let after: [String: TOMLValue]
    do { after = try TOML.parse(String(decoding: out, as: UTF8.self)) } catch {
      throw unsupported(path, "the edited file would not parse (line \(error.line): \(error.message))")
    }
    guard others(before) == others(after) else {
      throw unsupported(path, "other settings would change")
    }
    guard config(from: after) == c, after[table]?.tableValue != nil else {
      throw unsupported(path, "the [\(table)] table would not read back")
    }
    return result
  }

  /// The document without what this program owns: its table and the old top-level keys.
  static func others(_ root: [String: TOMLValue]) -> [String: TOMLValue] {
    var r = root
    r[table] = nil
    for k in ownKeys { r[k] = nil }
    return r
  }

  static func unsupported(_ path: String, _ why: String) -> TsukuError {
    TsukuError(
      .usage,
      "cannot update '\(path)': \(why); it was not changed (define [\(table)] as a plain table, or edit it by hand)")
  }

  static func endsWithBlankLine(_ b: [UInt8]) -> Bool {
    var i = b.count - 1
    guard i >= 0, b[i] == 0x0A else { return false }
    i -= 1
    if i >= 0 && b[i] == 0x0D { i -= 1 }
    while i >= 0 && (b[i] == 0x20 || b[i] == 0x09) { i -= 1 }
    return i < 0 || b[i] == 0x0A
  }

  /// The lines of the table's body (without its header).
  public static func render(_ c: Config) -> [String] {
    var lines = comments
    lines.append("sources = \(quote(c.sources.joined(separator: ",")))")
    if !c.witnesses.isEmpty || c.witnessQuorum > 0 {
      lines.append(witnessComment)
      lines.append("witnesses = [\(c.witnesses.map(quote).joined(separator: ", "))]")
      lines.append("witness_quorum = \(c.witnessQuorum)")
    }
    return lines
  }

  /// A TOML basic string; control characters escaped.
  static func quote(_ s: String) -> String { TOMLValue.string(s).inlineTOML }
}

/// A TOML document cut into statements, each with its exact bytes (its line ending included):
/// blank and comment lines, table headers and key/value pairs (a multi-line string or array
/// being one statement). Meant for a document `TOML.parse` accepted.
enum TOMLStatements {
  enum Kind: Equatable {
    case trivia
    case header([String], array: Bool)
    case keyValue([String])
  }

  struct Statement {
    var kind: Kind
    var text: [UInt8]
  }

  static func split(_ b: [UInt8]) -> [Statement] {
    var out = [Statement]()
    var i = 0
    let n = b.count
    func at(_ k: Int) -> UInt8? { k < n ? b[k] : nil }
    func skipSpace() { while let c = at(i), c == 0x20 || c == 0x09 { i += 1 } }
    func toLineEnd() {
      while let c = at(i), c != 0x0A { i += 1 }
      if i < n { i += 1 }
    }
    func key() -> [String] {
      var parts = [String]()
      while i < n {
        skipSpace()
        guard let c = at(i) else { break }
        if c == 0x22 {  // "basic"
          i += 1
          var raw = [UInt8]()
          while let d = at(i), d != 0x22 {
            if d == 0x5C, let e = at(i + 1) {
              raw += [d, e]
              i += 2
            } else {
              raw.append(d)
              i += 1
            }
          }
          i += 1
          parts.append(unescape(raw))
        } else if c == 0x27 {  // 'literal'
          i += 1
          let start = i
          while let d = at(i), d != 0x27 { i += 1 }
          parts.append(String(decoding: b[start..<min(i, n)], as: UTF8.self))
          i += 1
        } else {
          let start = i
          while let d = at(i), d.isBareKey { i += 1 }
          parts.append(String(decoding: b[start..<i], as: UTF8.self))
        }
        skipSpace()
        if at(i) == 0x2E { i += 1 } else { break }
      }
      return parts
    }
    func value() {
      var depth = 0
      while let c = at(i) {
        switch c {
        case 0x22, 0x27:
          let triple = at(i + 1) == c && at(i + 2) == c
          i += triple ? 3 : 1
          while let d = at(i) {
            if d == 0x5C && c == 0x22 {
              i += 2
              continue
            }
            if d == c && (!triple || (at(i + 1) == c && at(i + 2) == c)) {
              i += triple ? 3 : 1
              // Up to two more quotes may close a multi-line string ("""a"""" is a" + "").
              if triple { while at(i) == c { i += 1 } }
              break
            }
            i += 1
          }
        case 0x5B, 0x7B:
          depth += 1
          i += 1
        case 0x5D, 0x7D:
          depth -= 1
          i += 1
        case 0x23:
          while let d = at(i), d != 0x0A { i += 1 }
        case 0x0A:
          i += 1
          if depth <= 0 { return }
        default: i += 1
        }
      }
    }
    while i < n {
      let start = i
      skipSpace()
      let kind: Kind
      switch at(i) {
      case nil, 0x0A?, 0x0D?, 0x23?:
        toLineEnd()
        kind = .trivia
      case 0x5B?:
        let array = at(i + 1) == 0x5B
        i += array ? 2 : 1
        let path = key()
        toLineEnd()
        kind = .header(path, array: array)
      default:
        let path = key()
        if at(i) == 0x3D { i += 1 }
        value()
        kind = .keyValue(path)
      }
      if i == start { i += 1 }  // never loops on a byte it does not understand
      out.append(Statement(kind: kind, text: Array(b[start..<min(i, n)])))
    }
    return out
  }

  static func unescape(_ raw: [UInt8]) -> String {
    var out = String.UnicodeScalarView()
    var i = 0
    let s = Array(String(decoding: raw, as: UTF8.self).unicodeScalars)
    while i < s.count {
      let c = s[i]
      guard c == "\\", i + 1 < s.count else {
        out.append(c)
        i += 1
        continue
      }
      let e = s[i + 1]
      i += 2
      switch e {
      case "b": out.append("\u{08}")
      case "t": out.append("\t")
      case "n": out.append("\n")
      case "f": out.append("\u{0C}")
      case "r": out.append("\r")
      case "u", "U":
        let len = e == "u" ? 4 : 8
        let hex = String(String.UnicodeScalarView(s[i..<min(i + len, s.count)]))
        if let v = UInt32(hex, radix: 16), let u = Unicode.Scalar(v) { out.append(u) }
        i += len
      default: out.append(e)
      }
    }
    return String(out)
  }
}

extension UInt8 {
  fileprivate var isBareKey: Bool {
    (self >= 0x30 && self <= 0x39) || ((self | 0x20) >= 0x61 && (self | 0x20) <= 0x7A) || self == 0x2D || self == 0x5F
  }
}
