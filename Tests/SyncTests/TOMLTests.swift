import Foundation
import Testing

@testable import Sync

/// The TOML parser: each feature recipes use, and the errors for malformed documents.
@Suite struct TOMLTests {
  func parse(_ text: String) throws -> [String: TOMLValue] { try TOML.parse(text) }

  /// The error for a document that must not parse; nil if it parsed.
  func failure(_ text: String) -> TOMLError? {
    do {
      _ = try TOML.parse(text)
      return nil
    } catch {
      return error
    }
  }

  @Test func commentsAndKeys() throws {
    let doc = try parse(
      """
      # a comment line
      bare_key-1 = 1  # trailing comment
      "quoted key" = 2
      'literal key' = 3
      site."google.com" = true
      a . b = "spaced dots"
      "" = "empty key"
      """)
    #expect(doc["bare_key-1"] == .integer(1))
    #expect(doc["quoted key"] == .integer(2))
    #expect(doc["literal key"] == .integer(3))
    #expect(doc["site"] == .table(["google.com": .bool(true)]))
    #expect(doc["a"] == .table(["b": .string("spaced dots")]))
    #expect(doc[""] == .string("empty key"))
  }

  @Test func tablesAndSubTables() throws {
    let doc = try parse(
      """
      [x.y.z]
      w = 1
      [x]
      v = 2
      [fruit]
      apple.color = "red"
      [fruit.apple.texture]
      smooth = true
      """)
    #expect(doc["x"] == .table(["v": .integer(2), "y": .table(["z": .table(["w": .integer(1)])])]))
    let apple = doc["fruit"]?.tableValue?["apple"]?.tableValue
    #expect(apple?["color"] == .string("red"))
    #expect(apple?["texture"] == .table(["smooth": .bool(true)]))
  }

  @Test func arraysOfTables() throws {
    let doc = try parse(
      """
      [[steps]]
      action = "download"
      [[steps]]
      action = "extract"
      [steps.options]
      strip = 1
      [[steps.when]]
      os = "linux"
      """)
    let steps = try #require(doc["steps"]?.arrayValue)
    #expect(steps.count == 2)
    #expect(steps[0] == .table(["action": .string("download")]))
    let second = try #require(steps[1].tableValue)
    #expect(second["options"] == .table(["strip": .integer(1)]))
    #expect(second["when"] == .array([.table(["os": .string("linux")])]))
  }

  @Test func basicStringEscapes() throws {
    let doc = try parse(#"s = "tab\tnl\nquote\"back\\ \u00e9 \U0001F600 \b\f\r""#)
    #expect(doc["s"] == .string("tab\tnl\nquote\"back\\ é 😀 \u{8}\u{c}\r"))
  }

  @Test func literalStringsKeepBackslashes() throws {
    let doc = try parse(#"path = 'C:\Users\n "x"'"#)
    #expect(doc["path"] == .string(#"C:\Users\n "x""#))
  }

  @Test func multiLineBasicStrings() throws {
    let doc = try parse("a = \"\"\"\nline one\nline \\\"two\\\"\"\"\"\"\nb = \"\"\"one \\\n     two\"\"\"\n")
    #expect(doc["a"] == .string("line one\nline \"two\"\""))
    #expect(doc["b"] == .string("one two"))
  }

  @Test func multiLineLiteralStrings() throws {
    let doc = try parse("re = '''\nno \\escapes\n'here'''''\n")
    #expect(doc["re"] == .string("no \\escapes\n'here''"))
  }

  @Test func integers() throws {
    let doc = try parse(
      """
      a = +99
      b = -17
      c = 1_000_000
      d = 0xDEAD_beef
      e = 0o755
      f = 0b1101
      g = 9223372036854775807
      h = -9223372036854775808
      i = 0
      """)
    #expect(doc["a"] == .integer(99))
    #expect(doc["b"] == .integer(-17))
    #expect(doc["c"] == .integer(1_000_000))
    #expect(doc["d"] == .integer(0xDEAD_BEEF))
    #expect(doc["e"] == .integer(0o755))
    #expect(doc["f"] == .integer(13))
    #expect(doc["g"] == .integer(.max))
    #expect(doc["h"] == .integer(.min))
    #expect(doc["i"] == .integer(0))
  }

  @Test func floats() throws {
    let doc = try parse("a = 3.14\nb = -0.01\nc = 5e+22\nd = 6.626e-34\ne = 1_000.5\nf = -inf\ng = nan\nh = 0e0\n")
    #expect(doc["a"] == .float(3.14))
    #expect(doc["b"] == .float(-0.01))
    #expect(doc["c"] == .float(5e22))
    #expect(doc["d"] == .float(6.626e-34))
    #expect(doc["e"] == .float(1000.5))
    #expect(doc["f"] == .float(-.infinity))
    guard case .float(let g)? = doc["g"] else { Issue.record("nan is not a float"); return }
    #expect(g.isNaN)
    #expect(doc["h"] == .float(0))
  }

  @Test func booleansAndDateTimesKeptRaw() throws {
    let doc = try parse(
      """
      t = true
      f = false
      odt = 1979-05-27T07:32:00Z
      odt2 = 1979-05-27 00:32:00.999999-07:00
      ldt = 1979-05-27T07:32:00
      ld = 2000-02-29
      lt = 07:32:00.5
      """)
    #expect(doc["t"] == .bool(true))
    #expect(doc["f"] == .bool(false))
    #expect(doc["odt"] == .datetime("1979-05-27T07:32:00Z"))
    #expect(doc["odt2"] == .datetime("1979-05-27 00:32:00.999999-07:00"))
    #expect(doc["ldt"] == .datetime("1979-05-27T07:32:00"))
    #expect(doc["ld"] == .datetime("2000-02-29"))
    #expect(doc["lt"] == .datetime("07:32:00.5"))
  }

  @Test func multiLineArraysWithCommentsAndTrailingComma() throws {
    let doc = try parse(
      """
      bins = [
        "bin/a",  # first
        # a whole comment line
        "bin/b",
      ]
      nested = [[1, 2], ["x"], []]
      empty = [ ]
      """)
    #expect(doc["bins"] == .array([.string("bin/a"), .string("bin/b")]))
    #expect(doc["nested"] == .array([.array([.integer(1), .integer(2)]), .array([.string("x")]), .array([])]))
    #expect(doc["empty"] == .array([]))
  }

  @Test func inlineTables() throws {
    let doc = try parse(#"when = { os = ["linux"], libc.kind = "glibc", x = {} }"#)
    #expect(
      doc["when"]
        == .table([
          "os": .array([.string("linux")]), "libc": .table(["kind": .string("glibc")]), "x": .table([:]),
        ]))
  }

  @Test func crlfAndByteOrderMark() throws {
    #expect(try parse("\u{FEFF}a = 1\r\nb = '''\r\nx\r\ny'''\r\n") == ["a": .integer(1), "b": .string("x\ny")])
  }

  @Test func errorsCarryTheLineNumber() {
    #expect(failure("a = 1\nb = 2\nc 3\n") == TOMLError(line: 3, message: "expected '=' after key"))
    #expect(failure("a = 1\n\ns = \"open\n") == TOMLError(line: 3, message: "unterminated string"))
    #expect(failure("a = 1\nb = [1,\n2,\n") == TOMLError(line: 2, message: "unterminated array"))
    #expect(failure("x = \"\"\"\n\nnever closed") == TOMLError(line: 1, message: "unterminated multi-line string"))
    #expect(failure("[a]\nb = 1 2\n")?.line == 2)
    #expect(failure("a =\n")?.message == "expected a value, found end of line")
    #expect(failure("[a\n")?.message == "expected ']' after table name, found end of line")
    #expect(failure("a = 1\n\n\nb = 01\n") == TOMLError(line: 4, message: "invalid value '01'"))
    #expect(failure("a = \"x\"\nb = 9223372036854775808")?.message == "integer '9223372036854775808' is out of range")
    #expect(TOMLError(line: 3, message: "expected '=' after key").description == "line 3: expected '=' after key")
  }

  @Test func duplicateKeysAreRejected() {
    #expect(failure("name = 'a'\nname = 'b'\n") == TOMLError(line: 2, message: "duplicate key 'name'"))
    #expect(failure("name = 1\n\"name\" = 2") != nil)
    #expect(failure("a.b = 1\na.b = 2") != nil)
    #expect(failure("a.b = 1\na = 2") != nil)
    #expect(failure("x = { a = 1, a = 2 }") != nil)
    #expect(failure("[t]\nk = 1\n[u]\n[t]\nk = 2")?.line == 4)
  }

  @Test func redefinedTablesAreRejected() {
    #expect(failure("[a]\n[a]\n") == TOMLError(line: 2, message: "table 'a' is defined more than once"))
    #expect(failure("[a]\nb.c = 1\n[a.b]\n")?.line == 3)
    #expect(failure("[a.b.c]\n[a]\nb.c.d = 1\n")?.line == 3)
    #expect(failure("[[a]]\n[a]\n")?.line == 2)
    #expect(failure("[a]\n[[a]]\n")?.line == 2)
    #expect(failure("a = {}\n[a.b]\n")?.line == 2)
    #expect(failure("a = [1]\n[[a]]\n")?.line == 2)
    #expect(failure("a = { b = 1 }\na.c = 2\n")?.line == 2)
  }

  @Test(arguments: [
    "a = 1__0", "a = _1", "a = 1_", "a = +0x10", "a = 0X10", "a = 0b2", "a = 1.", "a = .5", "a = 1e",
    "a = 00.1", "a = Inf", "a = tru", "a = 1979-13-01", "a = 2001-02-29", "a = 24:00:00", "a = 07:32",
    "a = \"\\x41\"", "a = \"\\ud800\"", "a = \"\\u12\"", "a = \"a\u{1}b\"", "a = 1 # \u{7}", "a = 1\rb = 2",
    "a = { b = 1, }", "a = { b = 1,\n c = 2 }", "a = [1,,2]", "[]", "[a.]", "[ [a]]", "\"\"\"k\"\"\" = 1",
    "a = '''x''''''", "a = \"x\"y",
  ])
  func malformedInputIsRejected(_ text: String) {
    #expect(failure(text) != nil)
  }

  @Test func nestingIsBounded() throws {
    let ok = String(repeating: "[", count: TOML.maxDepth) + String(repeating: "]", count: TOML.maxDepth)
    #expect(try parse("a = " + ok)["a"] != nil)
    #expect(failure("a = " + String(repeating: "[", count: 100_000))?.message == "arrays nested too deeply")
    #expect(failure("a = " + String(repeating: "{b=", count: 100_000)) != nil)
    #expect(failure(Array(repeating: "k", count: 10_000).joined(separator: ".") + " = 1") != nil)
    #expect(failure("[" + Array(repeating: "k", count: 10_000).joined(separator: ".") + "]") != nil)
  }

  @Test func everyTruncationOfARecipeParsesOrFailsCleanly() {
    let sample = """
      [metadata]
      name = "x" # c
      deps = ["a", 'b', ]
      when = { os = ["linux"], n = 0x1F, f = 1.5e3, d = 1979-05-27 07:32:00Z }
      s = \"\"\"multi \\
        line\"\"\"
      l = '''raw'''
      [[steps]]
      action = "é \\u00e9"
      """
    var parsed = 0
    for end in sample.indices {
      if (try? TOML.parse(String(sample[..<end]))) != nil { parsed += 1 }
    }
    #expect(parsed > 0)
    #expect(failure(sample) == nil)
  }
}
