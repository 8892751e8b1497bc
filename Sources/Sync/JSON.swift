import Foundation
import Store

/// JSON helpers shared by every document: sorted keys, so the same document always has the
/// same bytes, and decoding that turns any failure into one line naming the document.
enum JSON {
  static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> Data {
    let e = JSONEncoder()
    e.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
    do { return try e.encode(value) } catch { fatalError("cannot encode \(T.self): \(error)") }
  }

  static func decode<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
    do {
      return try JSONDecoder().decode(type, from: data)
    } catch let DecodingError.dataCorrupted(ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: \(Self.describe(ctx))")
    } catch let DecodingError.keyNotFound(key, ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: missing '\(Self.path(ctx.codingPath + [key]))'")
    } catch let DecodingError.typeMismatch(_, ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: wrong type at '\(Self.path(ctx.codingPath))'")
    } catch let DecodingError.valueNotFound(_, ctx) {
      throw TsukuError(.integrity, "\(what) is not valid: null at '\(Self.path(ctx.codingPath))'")
    } catch {
      throw TsukuError(.integrity, "\(what) is not valid JSON")
    }
  }

  private static func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
  }

  private static func describe(_ ctx: DecodingError.Context) -> String {
    let p = path(ctx.codingPath)
    let d = ctx.debugDescription.split(separator: "\n").first.map(String.init) ?? "bad value"
    return p.isEmpty ? d.lowercased() : "\(p): \(d)"
  }
}

/// UTC timestamps as `2026-11-29T13:28:50Z`, the only form documents use.
public enum Timestamp {
  public static func format(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: date)
  }

  public static func parse(_ text: String) -> Date? {
    guard text.utf8.count == 20, text.hasSuffix("Z") else { return nil }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: text)
  }
}

extension Data {
  /// Decodes strict standard base64; nil for anything else.
  init?(strictBase64 text: String) {
    self.init(base64Encoded: text)
  }
}
