import Foundation
import Store

/// One field in which a test recipe's steps differ from its production recipe's.
public struct DriftDifference: Equatable, Sendable {
  /// Where: `steps[2].action`, `steps[0].when.os`, or `steps[3]` for a whole step.
  public var path: String
  /// The test recipe's value (`nil`: the test recipe lacks it).
  public var old: TOMLValue?
  /// The production recipe's value (`nil`: the production recipe lacks it).
  public var new: TOMLValue?

  public init(path: String, old: TOMLValue?, new: TOMLValue?) {
    self.path = path
    self.old = old
    self.new = new
  }

  /// `changed`, `added` (only production has it) or `removed` (only the test recipe has it).
  public var change: String { old == nil ? "added" : new == nil ? "removed" : "changed" }
}

/// What the drift check found for one test recipe that names its production recipe.
public struct DriftResult: Equatable, Sendable {
  public enum Status: String, Sendable {
    /// The steps are the same.
    case ok
    /// The steps differ: see `differences`.
    case drift
    /// `source_recipe` names a file that does not exist.
    case missing
    /// The test recipe, its `source_recipe` or the production recipe cannot be read as a recipe.
    case invalid
  }

  /// The test recipe, relative to the testdata folder.
  public var testRecipe: String
  /// Its `metadata.source_recipe`, as written.
  public var sourceRecipe: String
  /// The production file it resolved to, when it resolved.
  public var production: String?
  public var status: Status
  /// Why, for `missing` and `invalid`.
  public var reason: String?
  public var differences: [DriftDifference]
}

/// The drift check over a whole testdata folder.
public struct DriftReport: Sendable {
  /// Test recipes with a `source_recipe`, in path order.
  public var results: [DriftResult]
  /// `.toml` files under testdata with no `source_recipe` (not checked), relative paths.
  public var unlinked: [String]
  /// `.toml` files under testdata that do not parse and do not mention `source_recipe` (not
  /// checked: testdata may hold broken recipes on purpose).
  public var unreadable: [String] = []

  public func count(_ s: DriftResult.Status) -> Int { results.filter { $0.status == s }.count }
  /// 0 when every linked test recipe matches its production recipe, else 2.
  public var exitCode: Int32 { results.allSatisfy { $0.status == .ok } ? 0 : 2 }
}

/// The drift check for test recipes (operations review, concern 6): a test recipe under a
/// testdata folder that says `source_recipe = "recipes/x/name.toml"` in its `[metadata]` must
/// keep the same `[[steps]]` (actions and every parameter, `when` included) as that production
/// recipe. Metadata, `[version]` and `[verify]` are not compared: a test copy may legitimately
/// differ there (it carries `source_recipe`, for one). Files are compared as parsed TOML, so
/// layout, comments, key order and quoting never count as drift.
public enum Drift {
  static let maxFileSize = 4 * 1024 * 1024

  /// Checks every `.toml` file under `testdata` (recursively, hidden files skipped) against
  /// the production recipes under `recipes`. Throws `.usage` when either folder is missing.
  public static func check(recipes: String, testdata: String) throws -> DriftReport {
    let recipesRoot = try directory(recipes, option: "--recipes")
    let testRoot = try directory(testdata, option: "--testdata")
    var report = DriftReport(results: [], unlinked: [], unreadable: [])
    for rel in try tomlFiles(in: testRoot) {
      let path = testRoot + "/" + rel
      func invalid(_ source: String, _ why: String) {
        report.results.append(
          DriftResult(testRecipe: rel, sourceRecipe: source, production: nil, status: .invalid, reason: why, differences: []))
      }
      let testDoc: [String: TOMLValue]
      do {
        testDoc = try parse(path)
      } catch {
        // A file that cannot be parsed is a finding only if it means to name a production
        // recipe; testdata may hold deliberately broken recipes for other tests.
        if let d = FileManager.default.contents(atPath: path), String(decoding: d, as: UTF8.self).contains("source_recipe") {
          invalid("", "test recipe: \(error)")
        } else {
          report.unreadable.append(rel)
        }
        continue
      }
      guard let link = testDoc["metadata"]?.tableValue?["source_recipe"] else {
        report.unlinked.append(rel)
        continue
      }
      guard let source = link.stringValue else {
        invalid("", "metadata.source_recipe is not a string")
        continue
      }
      let production: String
      do {
        production = try resolve(source, under: recipesRoot)
      } catch {
        invalid(source, "\(error)")
        continue
      }
      guard FileManager.default.fileExists(atPath: production) else {
        report.results.append(
          DriftResult(
            testRecipe: rel, sourceRecipe: source, production: production, status: .missing,
            reason: "source recipe '\(source)' not found: no file '\(production)'", differences: []))
        continue
      }
      let prodDoc: [String: TOMLValue]
      do {
        prodDoc = try parse(production)
      } catch {
        invalid(source, "source recipe '\(source)': \(error)")
        continue
      }
      do {
        let diffs = try compareSteps(test: testDoc, production: prodDoc)
        report.results.append(
          DriftResult(
            testRecipe: rel, sourceRecipe: source, production: production, status: diffs.isEmpty ? .ok : .drift,
            reason: nil, differences: diffs))
      } catch {
        invalid(source, "\(error)")
      }
    }
    return report
  }

  /// The differences between the `[[steps]]` of two parsed recipes, step by step and field by
  /// field (tables are compared key by key, arrays as whole values), in path order.
  public static func compareSteps(test: [String: TOMLValue], production: [String: TOMLValue]) throws -> [DriftDifference] {
    let a = try steps(test, "test recipe")
    let b = try steps(production, "source recipe")
    var out = [DriftDifference]()
    for i in 0..<max(a.count, b.count) {
      let path = "steps[\(i)]"
      if i >= a.count || i >= b.count {
        out.append(DriftDifference(path: path, old: i < a.count ? a[i] : nil, new: i < b.count ? b[i] : nil))
      } else {
        diff(a[i], b[i], path, into: &out)
      }
    }
    return out
  }

  private static func diff(_ a: TOMLValue, _ b: TOMLValue, _ path: String, into out: inout [DriftDifference]) {
    if a == b { return }
    guard let ta = a.tableValue, let tb = b.tableValue else {
      out.append(DriftDifference(path: path, old: a, new: b))
      return
    }
    for key in Set(ta.keys).union(tb.keys).sorted() {
      let p = path + "." + key
      switch (ta[key], tb[key]) {
      case (let x?, let y?): diff(x, y, p, into: &out)
      case (let x, let y): out.append(DriftDifference(path: p, old: x, new: y))
      }
    }
  }

  private static func steps(_ doc: [String: TOMLValue], _ what: String) throws -> [TOMLValue] {
    guard let v = doc["steps"] else { return [] }
    guard let list = v.arrayValue, list.allSatisfy({ $0.tableValue != nil }) else {
      throw TsukuError(.usage, "\(what): 'steps' is not an array of tables")
    }
    return list
  }

  /// `recipes/x/name.toml` names `<recipes>/x/name.toml` (the leading `recipes/` is the
  /// production folder itself); any other relative path is taken under `recipes` as it is.
  /// Absolute paths and paths that leave the folder are refused.
  static func resolve(_ source: String, under root: String) throws -> String {
    var parts = source.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    if source.isEmpty || source.hasPrefix("/") || parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
      throw TsukuError(
        .usage, "metadata.source_recipe \(displayQuoted(source)) is not a relative path like 'recipes/x/name.toml'")
    }
    if parts.count > 1 && parts[0] == "recipes" { parts.removeFirst() }
    guard source.hasSuffix(".toml") else {
      throw TsukuError(.usage, "metadata.source_recipe \(displayQuoted(source)) is not a .toml file")
    }
    return root + "/" + parts.joined(separator: "/")
  }

  private static func parse(_ path: String) throws -> [String: TOMLValue] {
    let attrs = try? FileManager.default.attributesOfItem(atPath: path)
    if let size = attrs?[.size] as? Int, size > maxFileSize {
      throw TsukuError(.usage, "\(size) bytes, more than the \(maxFileSize) allowed")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw TsukuError(.other, "cannot read '\(path)'")
    }
    guard let text = RecipeFile.utf8String(data) else { throw TsukuError(.usage, "not valid utf-8") }
    do {
      return try TOML.parse(text)
    } catch {
      throw TsukuError(.usage, "not valid TOML: \(error.description)")
    }
  }

  private static func directory(_ path: String, option: String) throws -> String {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
      throw TsukuError(.usage, "\(option) '\(path)' is not a directory")
    }
    return path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
  }

  private static func tomlFiles(in dir: String) throws -> [String] {
    guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
    var out = [String]()
    while let rel = e.nextObject() as? String {
      let name = (rel as NSString).lastPathComponent
      if name.hasPrefix(".") {
        e.skipDescendants()
        continue
      }
      var d: ObjCBool = false
      if rel.hasSuffix(".toml"), FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &d), !d.boolValue {
        out.append(rel)
      }
    }
    return out.sorted()
  }
}
