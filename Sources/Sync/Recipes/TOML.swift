/// A parsed TOML value. Date-times are kept exactly as written.
public indirect enum TOMLValue: Equatable, Sendable {
  case string(String)
  case integer(Int64)
  case float(Double)
  case bool(Bool)
  /// An offset or local date-time, local date or local time, as written in the document.
  case datetime(String)
  case array([TOMLValue])
  case table([String: TOMLValue])

  /// The string, if this is a string.
  public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
  /// The elements, if this is an array (an array of tables included).
  public var arrayValue: [TOMLValue]? { if case .array(let a) = self { a } else { nil } }
  /// The entries, if this is a table.
  public var tableValue: [String: TOMLValue]? { if case .table(let t) = self { t } else { nil } }
}

/// Why a document is not valid TOML: a 1-based line number and a one-line, lower-case message.
public struct TOMLError: Error, CustomStringConvertible, Equatable {
  public let line: Int
  public let message: String

  public init(line: Int, message: String) {
    self.line = line
    self.message = message
  }

  public var description: String { "line \(line): \(message)" }
}

/// A strict TOML 1.0 parser, enough for tsuku recipes. It never traps on bad input and refuses
/// documents nested deeper than `maxDepth` tables or arrays.
public enum TOML {
  /// The deepest nesting of tables and arrays accepted.
  public static let maxDepth = 64

  /// Parses a whole document into its root table.
  public static func parse(_ text: String) throws(TOMLError) -> [String: TOMLValue] {
    var parser = TOMLParser(Array(text.utf8))
    return try parser.document()
  }
}

/// A value shown in a message: in single quotes, with control characters escaped so the
/// message stays on one line.
/// A dotted key as one string (`a.b.c`), joined by hand: the standard library's
/// `joined(separator:)` is not specialized here and costs a runtime conformance lookup on its
/// first use.
func dotted(_ key: [String]) -> String {
  var out = ""
  for (n, part) in key.enumerated() {
    if n > 0 { out += "." }
    out += part
  }
  return out
}

func displayQuoted(_ s: String) -> String {
  var out = "'"
  for scalar in s.unicodeScalars {
    if scalar.value < 0x20 || scalar.value == 0x7f {
      out += scalar.escaped(asASCII: true)
    } else {
      out.unicodeScalars.append(scalar)
    }
  }
  return out + "'"
}

/// A table while it is being built; `header` and `dotted` record how it was defined, so a
/// second definition can be refused.
private final class TableNode {
  enum Entry {
    case value(TOMLValue)
    case table(TableNode)
    case tables(TableList)
  }

  var entries: [String: Entry] = [:]
  let depth: Int
  var header = false
  var dotted = false

  init(depth: Int) { self.depth = depth }

  func value() -> [String: TOMLValue] {
    entries.mapValues { entry in
      switch entry {
      case .value(let v): v
      case .table(let t): .table(t.value())
      case .tables(let list): .array(list.items.map { .table($0.value()) })
      }
    }
  }
}

/// The elements of an array of tables, in a box so `[[name]]` appends without copying.
private final class TableList {
  var items: [TableNode]
  init(_ first: TableNode) { items = [first] }
}

private enum Byte {
  static let tab: UInt8 = 0x09, lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, space: UInt8 = 0x20
  static let quote: UInt8 = 0x22, hash: UInt8 = 0x23, apostrophe: UInt8 = 0x27
  static let plus: UInt8 = 0x2B, comma: UInt8 = 0x2C, minus: UInt8 = 0x2D, dot: UInt8 = 0x2E
  static let colon: UInt8 = 0x3A, equals: UInt8 = 0x3D, open: UInt8 = 0x5B, backslash: UInt8 = 0x5C
  static let close: UInt8 = 0x5D, underscore: UInt8 = 0x5F, brace: UInt8 = 0x7B, endBrace: UInt8 = 0x7D

  static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
  static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
  static func isBareKey(_ c: UInt8) -> Bool { isAlpha(c) || isDigit(c) || c == minus || c == underscore }
  static func isToken(_ c: UInt8) -> Bool { isBareKey(c) || c == plus || c == dot || c == colon }
  static func isControl(_ c: UInt8) -> Bool { (c < 0x20 && c != tab) || c == 0x7F }
}

private struct TOMLParser {
  let b: [UInt8]
  var i = 0

  init(_ bytes: [UInt8]) { b = bytes }

  // MARK: Cursor

  func peek(_ k: Int = 0) -> UInt8? { i + k < b.count ? b[i + k] : nil }

  func fail(_ message: String, at pos: Int? = nil) -> TOMLError {
    let end = min(pos ?? i, b.count)
    var line = 1
    for c in b[..<end] where c == Byte.lf { line += 1 }
    return TOMLError(line: line, message: message)
  }

  /// What sits at the cursor, for messages.
  func found() -> String {
    guard let c = peek() else { return "end of file" }
    switch c {
    case Byte.lf: return "end of line"
    case Byte.cr: return "a carriage return"
    case Byte.tab: return "a tab"
    case 0x20..<0x7F: return "'\(Character(Unicode.Scalar(c)))'"
    default:
      let scalar = String(decoding: b[i..<min(i + 4, b.count)], as: UTF8.self).unicodeScalars.first
      let hex = String(scalar?.value ?? UInt32(c), radix: 16, uppercase: true)
      return "character U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
  }

  mutating func skipSpace() {
    while let c = peek(), c == Byte.space || c == Byte.tab { i += 1 }
  }

  mutating func newline() -> Bool {
    if peek() == Byte.lf { i += 1; return true }
    if peek() == Byte.cr && peek(1) == Byte.lf { i += 2; return true }
    return false
  }

  mutating func comment() throws(TOMLError) {
    guard peek() == Byte.hash else { return }
    while let c = peek(), c != Byte.lf {
      if c == Byte.cr && peek(1) == Byte.lf { return }
      if Byte.isControl(c) { throw fail("control character in comment") }
      i += 1
    }
  }

  /// Skips spaces, comments and newlines, as allowed between array elements.
  mutating func skipBlank() throws(TOMLError) {
    while true {
      skipSpace()
      try comment()
      if !newline() { return }
    }
  }

  // MARK: Document structure

  mutating func document() throws(TOMLError) -> [String: TOMLValue] {
    let root = TableNode(depth: 0)
    var current = root
    if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    while true {
      skipSpace()
      guard let c = peek() else { break }
      if c == Byte.hash {
        try comment()
      } else if newline() {
        continue
      } else if c == Byte.open {
        current = try header(root)
      } else {
        try keyValue(into: current)
      }
      skipSpace()
      try comment()
      if peek() == nil { break }
      guard newline() else { throw fail("expected end of line, found \(found())") }
    }
    return root.value()
  }

  mutating func header(_ root: TableNode) throws(TOMLError) -> TableNode {
    let start = i
    let isArray = peek(1) == Byte.open
    i += isArray ? 2 : 1
    let key = try readKey()
    guard peek() == Byte.close, !isArray || peek(1) == Byte.close else {
      throw fail("expected '\(isArray ? "]]" : "]")' after table name, found \(found())")
    }
    i += isArray ? 2 : 1
    // Only for messages: made when one is given.
    var name: String { displayQuoted(dotted(key)) }
    var table = root
    for part in key.dropLast() {
      switch table.entries[part] {
      case nil:
        let child = try newTable(in: table, at: start)
        table.entries[part] = .table(child)
        table = child
      case .table(let child): table = child
      case .tables(let list):
        guard let last = list.items.last else { throw fail("table \(name) has no parent", at: start) }
        table = last
      case .value: throw fail("cannot define table \(name): a parent key is not a table", at: start)
      }
    }
    guard let last = key.last else { throw fail("expected a table name", at: start) }
    let child = try newTable(in: table, at: start)
    child.header = true
    switch (isArray, table.entries[last]) {
    case (true, nil): table.entries[last] = .tables(TableList(child))
    case (true, .tables(let list)?): list.items.append(child)
    case (false, nil): table.entries[last] = .table(child)
    case (false, .table(let existing)?) where !existing.header && !existing.dotted:
      existing.header = true
      return existing
    default: throw fail("table \(name) is defined more than once", at: start)
    }
    return child
  }

  func newTable(in parent: TableNode, at pos: Int) throws(TOMLError) -> TableNode {
    guard parent.depth < TOML.maxDepth else { throw fail("tables nested too deeply", at: pos) }
    return TableNode(depth: parent.depth + 1)
  }

  mutating func keyValue(into table: TableNode) throws(TOMLError) {
    let start = i
    let key = try readKey()
    guard peek() == Byte.equals else { throw fail("expected '=' after key") }
    i += 1
    skipSpace()
    let value = try readValue(depth: table.depth + key.count)
    try insert(key, value, into: table, at: start)
  }

  /// Sets a dotted key, creating the intermediate tables that dotted keys may extend.
  func insert(_ key: [String], _ value: TOMLValue, into root: TableNode, at pos: Int) throws(TOMLError) {
    // Only for messages: made when one is given.
    var name: String { displayQuoted(dotted(key)) }
    var table = root
    for part in key.dropLast() {
      switch table.entries[part] {
      case nil:
        let child = try newTable(in: table, at: pos)
        child.dotted = true
        table.entries[part] = .table(child)
        table = child
      case .table(let child) where !child.header:
        child.dotted = true
        table = child
      default: throw fail("cannot set key \(name): a parent key is already defined", at: pos)
      }
    }
    guard let last = key.last else { throw fail("expected a key", at: pos) }
    guard table.entries[last] == nil else { throw fail("duplicate key \(name)", at: pos) }
    table.entries[last] = .value(value)
  }

  /// A possibly dotted key; leaves the cursor after any spaces that follow it.
  mutating func readKey() throws(TOMLError) -> [String] {
    var parts: [String] = []
    while true {
      skipSpace()
      parts.append(try simpleKey())
      skipSpace()
      guard peek() == Byte.dot else { return parts }
      i += 1
    }
  }

  mutating func simpleKey() throws(TOMLError) -> String {
    if let q = peek(), q == Byte.quote || q == Byte.apostrophe {
      if peek(1) == q && peek(2) == q { throw fail("a multi-line string cannot be a key") }
      return try singleLine()
    }
    let start = i
    while let c = peek(), Byte.isBareKey(c) { i += 1 }
    guard i > start else { throw fail("expected a key, found \(found())") }
    return String(decoding: b[start..<i], as: UTF8.self)
  }

  // MARK: Values

  mutating func readValue(depth: Int) throws(TOMLError) -> TOMLValue {
    switch peek() {
    case let q? where q == Byte.quote || q == Byte.apostrophe:
      if peek(1) == q && peek(2) == q { return .string(try multiline(q)) }
      return .string(try singleLine())
    case Byte.open?: return try array(depth: depth)
    case Byte.brace?: return try inlineTable(depth: depth)
    default: return try scalar()
    }
  }

  mutating func array(depth: Int) throws(TOMLError) -> TOMLValue {
    guard depth <= TOML.maxDepth else { throw fail("arrays nested too deeply") }
    let start = i
    i += 1
    var items: [TOMLValue] = []
    while true {
      try skipBlank()
      guard let c = peek() else { throw fail("unterminated array", at: start) }
      if c == Byte.close { i += 1; return .array(items) }
      items.append(try readValue(depth: depth + 1))
      try skipBlank()
      if peek() == Byte.comma { i += 1; continue }
      if peek() == Byte.close { i += 1; return .array(items) }
      throw fail("expected ',' or ']' in array, found \(found())")
    }
  }

  mutating func inlineTable(depth: Int) throws(TOMLError) -> TOMLValue {
    guard depth <= TOML.maxDepth else { throw fail("inline tables nested too deeply") }
    i += 1
    let table = TableNode(depth: depth)
    skipSpace()
    if peek() == Byte.endBrace { i += 1; return .table([:]) }
    while true {
      try keyValue(into: table)
      skipSpace()
      if peek() == Byte.comma { i += 1; continue }
      if peek() == Byte.endBrace { i += 1; return .table(table.value()) }
      throw fail("expected ',' or '}' in inline table, found \(found())")
    }
  }

  /// A number, boolean or date-time: a run of token characters, classified afterwards.
  mutating func scalar() throws(TOMLError) -> TOMLValue {
    let start = i
    while let c = peek(), Byte.isToken(c) { i += 1 }
    // A date and a time may be separated by one space.
    if i - start == 10, peek() == Byte.space, let h = peek(1), let m = peek(2), Byte.isDigit(h),
      Byte.isDigit(m), peek(3) == Byte.colon, TOMLScalar.isDateTime(b[start..<i])
    {
      i += 1
      while let c = peek(), Byte.isToken(c) { i += 1 }
    }
    guard i > start else { throw fail("expected a value, found \(found())") }
    let token = b[start..<i]
    let text = String(decoding: token, as: UTF8.self)
    switch TOMLScalar.classify(token) {
    case .value(let v): return v
    case .outOfRange: throw fail("integer \(displayQuoted(text)) is out of range", at: start)
    case .invalid: throw fail("invalid value \(displayQuoted(text))", at: start)
    }
  }

  // MARK: Strings

  /// A `"..."` or `'...'` string on one line; escapes apply only to the first kind.
  mutating func singleLine() throws(TOMLError) -> String {
    let start = i
    let q = b[i]
    i += 1
    var out: [UInt8] = []
    while true {
      guard let c = peek(), c != Byte.lf, c != Byte.cr else { throw fail("unterminated string", at: start) }
      if c == q { i += 1; return String(decoding: out, as: UTF8.self) }
      if c == Byte.backslash && q == Byte.quote { try escape(into: &out); continue }
      if Byte.isControl(c) { throw fail("control character in string") }
      out.append(c)
      i += 1
    }
  }

  /// A `"""` or `'''` string; `q` is the quote byte. Escapes apply only to basic strings.
  mutating func multiline(_ q: UInt8) throws(TOMLError) -> String {
    let start = i
    i += 3
    _ = newline()
    var out: [UInt8] = []
    while true {
      guard let c = peek() else { throw fail("unterminated multi-line string", at: start) }
      if c == q {
        var n = 0
        while peek() == q { n += 1; i += 1 }
        out.append(contentsOf: repeatElement(q, count: n >= 3 ? n - 3 : n))
        if n > 5 { throw fail("too many quotes at the end of a multi-line string") }
        if n >= 3 { return String(decoding: out, as: UTF8.self) }
      } else if c == Byte.backslash && q == Byte.quote {
        var j = i + 1
        while j < b.count, b[j] == Byte.space || b[j] == Byte.tab { j += 1 }
        if j < b.count, b[j] == Byte.lf || (b[j] == Byte.cr && j + 1 < b.count && b[j + 1] == Byte.lf) {
          i = j
          while newline() || peek() == Byte.space || peek() == Byte.tab {
            skipSpace()
          }
        } else {
          try escape(into: &out)
        }
      } else if newline() {
        out.append(Byte.lf)
      } else if Byte.isControl(c) {
        throw fail("control character in string")
      } else {
        out.append(c)
        i += 1
      }
    }
  }

  mutating func escape(into out: inout [UInt8]) throws(TOMLError) {
    i += 1
    guard let e = peek() else { throw fail("unterminated string") }
    i += 1
    switch e {
    case 0x62: out.append(0x08)  // \b
    case 0x74: out.append(0x09)  // \t
    case 0x6E: out.append(0x0A)  // \n
    case 0x66: out.append(0x0C)  // \f
    case 0x72: out.append(0x0D)  // \r
    case Byte.quote, Byte.backslash: out.append(e)
    case 0x75, 0x55: try unicodeEscape(digits: e == 0x75 ? 4 : 8, into: &out)
    default:
      i -= 1
      throw fail("invalid escape sequence: '\\' followed by \(found())")
    }
  }

  mutating func unicodeEscape(digits count: Int, into out: inout [UInt8]) throws(TOMLError) {
    var code: UInt32 = 0
    for _ in 0..<count {
      guard let h = peek(), let digit = TOMLScalar.hexDigit(h) else { throw fail("invalid unicode escape") }
      code = code << 4 | UInt32(digit)
      i += 1
    }
    guard let scalar = Unicode.Scalar(code) else { throw fail("invalid unicode escape") }
    Unicode.UTF8.encode(scalar) { out.append($0) }
  }
}

/// Classifies and checks the bare scalar tokens: booleans, integers, floats and date-times.
enum TOMLScalar {
  enum Result { case value(TOMLValue), outOfRange, invalid }

  static func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: c - 0x30
    case 0x41...0x46: c - 0x37
    case 0x61...0x66: c - 0x57
    default: nil
    }
  }

  static func classify(_ t: ArraySlice<UInt8>) -> Result {
    let text = String(decoding: t, as: UTF8.self)
    switch text {
    case "true": return .value(.bool(true))
    case "false": return .value(.bool(false))
    case "inf", "+inf": return .value(.float(.infinity))
    case "-inf": return .value(.float(-.infinity))
    case "nan", "+nan", "-nan": return .value(.float(.nan))
    default: break
    }
    let a = Array(t)
    if a.count >= 5 && a[0..<4].allSatisfy(Byte.isDigit) && a[4] == Byte.minus
      || a.count >= 3 && Byte.isDigit(a[0]) && Byte.isDigit(a[1]) && a[2] == Byte.colon
    {
      return isDateTime(t) ? .value(.datetime(text)) : .invalid
    }
    if a.count > 2, a[0] == 0x30, let radix = [0x78: 16, 0x6F: 8, 0x62: 2][a[1]] {
      return integer(a[2...], radix: radix, negative: false)
    }
    let signed = a.first == Byte.plus || a.first == Byte.minus
    let body = signed ? a[1...] : a[...]
    let point = body.firstIndex { $0 == Byte.dot || $0 == 0x65 || $0 == 0x45 }
    let whole = body[..<(point ?? body.endIndex)]
    guard whole.count == 1 || whole.first != 0x30 else { return .invalid }
    guard let point else { return integer(whole, radix: 10, negative: a.first == Byte.minus) }
    guard digits(whole, radix: 10) != nil else { return .invalid }
    var rest = body[point...]
    if rest.first == Byte.dot {
      rest = rest.dropFirst()
      let end = rest.firstIndex { $0 == 0x65 || $0 == 0x45 } ?? rest.endIndex
      guard digits(rest[..<end], radix: 10) != nil else { return .invalid }
      rest = rest[end...]
    }
    if !rest.isEmpty {
      rest = rest.dropFirst()
      if rest.first == Byte.plus || rest.first == Byte.minus { rest = rest.dropFirst() }
      guard digits(rest, radix: 10) != nil else { return .invalid }
    }
    guard let d = Double(String(decoding: a.filter { $0 != Byte.underscore }, as: UTF8.self)) else {
      return .invalid
    }
    return .value(.float(d))
  }

  /// The digit values of a run of digits with single underscores between them.
  static func digits(_ d: ArraySlice<UInt8>, radix: Int) -> [UInt8]? {
    guard let first = d.first, let last = d.last, first != Byte.underscore, last != Byte.underscore
    else { return nil }
    var out: [UInt8] = []
    var underscore = false
    for c in d {
      if c == Byte.underscore {
        if underscore { return nil }
        underscore = true
        continue
      }
      underscore = false
      guard let v = hexDigit(c), Int(v) < radix else { return nil }
      out.append(v)
    }
    return out
  }

  static func integer(_ d: ArraySlice<UInt8>, radix: Int, negative: Bool) -> Result {
    guard let values = digits(d, radix: radix) else { return .invalid }
    var n: Int64 = 0
    for v in values {
      let (m, o1) = n.multipliedReportingOverflow(by: Int64(radix))
      let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(v)) : m.addingReportingOverflow(Int64(v))
      if o1 || o2 { return .outOfRange }
      n = s
    }
    return .value(.integer(n))
  }

  /// Whether the token is a full RFC 3339 date-time, local date-time, local date or local time.
  static func isDateTime(_ t: ArraySlice<UInt8>) -> Bool {
    let a = Array(t)
    var p = 0
    func number(_ n: Int, below limit: Int) -> Int? {
      guard p + n <= a.count, a[p..<(p + n)].allSatisfy(Byte.isDigit) else { return nil }
      let v = a[p..<(p + n)].reduce(0) { $0 * 10 + Int($1 - 0x30) }
      p += n
      return v < limit ? v : nil
    }
    func take(_ set: UInt8...) -> Bool {
      guard p < a.count, set.contains(a[p]) else { return false }
      p += 1
      return true
    }
    func time() -> Bool {
      guard number(2, below: 24) != nil, take(Byte.colon), number(2, below: 60) != nil, take(Byte.colon),
        number(2, below: 60) != nil
      else { return false }
      guard take(Byte.dot) else { return true }
      let q = p
      while p < a.count, Byte.isDigit(a[p]) { p += 1 }
      return p > q
    }
    if a.count > 2 && a[2] == Byte.colon { return time() && p == a.count }
    guard let year = number(4, below: 10000), take(Byte.minus), let month = number(2, below: 13), month > 0,
      take(Byte.minus), let day = number(2, below: 32), day > 0
    else { return false }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    guard day <= days else { return false }
    if p == a.count { return true }
    guard take(0x54, 0x74, Byte.space), time() else { return false }
    if p == a.count || take(0x5A, 0x7A) { return p == a.count }
    guard take(Byte.plus, Byte.minus), number(2, below: 24) != nil, take(Byte.colon), number(2, below: 60) != nil
    else { return false }
    return p == a.count
  }
}
