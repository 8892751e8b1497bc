import Foundation
import Testing

import TestSupport

/// YAML files read as JSON by python3 with PyYAML, the way GitHub reads them (YAML 1.2
/// booleans: `on:` stays a key) and refusing duplicate keys. Throws when python3 or PyYAML is
/// missing (tools/install-deps installs PyYAML) or when a file is not valid YAML.
func yamlDocuments(_ paths: [String]) throws -> [String: Any] {
  let script = """
    import json, re, sys
    import yaml
    class L(yaml.SafeLoader):
        pass
    L.yaml_implicit_resolvers = {k: [(t, r) for t, r in v if t != 'tag:yaml.org,2002:bool']
                                 for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    L.add_implicit_resolver('tag:yaml.org,2002:bool', re.compile(r'^(?:true|True|TRUE|false|False|FALSE)$'), list('tTfF'))
    def mapping(loader, node, deep=False):
        seen = set()
        for k, _ in node.value:
            key = loader.construct_object(k, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, 'duplicate key %r' % (key,), k.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep)
    L.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    out = {}
    for p in sys.argv[1:]:
        try:
            with open(p) as f:
                out[p] = yaml.load(f, Loader=L)
        except yaml.YAMLError as e:
            sys.stderr.write('%s: %s\\n' % (p, str(e).replace('\\n', ' ')))
            sys.exit(1)
    json.dump(out, sys.stdout)
    """
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = ["python3", "-c", script] + paths
  let out = Pipe()
  let err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let o = out.fileHandleForReading.readDataToEndOfFile()
  let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  p.waitUntilExit()
  if e.contains("No module named 'yaml'") {
    throw WorkflowProblem("PyYAML is missing: run tools/install-deps (pip install PyYAML)")
  }
  guard p.terminationStatus == 0 else { throw WorkflowProblem("not valid YAML: \(e)") }
  guard let docs = try JSONSerialization.jsonObject(with: o) as? [String: Any] else {
    throw WorkflowProblem("python3 printed no JSON object")
  }
  return docs
}

struct WorkflowProblem: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}

/// One job as the documentation's dependency table gives it.
struct DocumentedJob: Equatable {
  var needs: Set<String>
  var gates: Bool
  var timeout: Int
}

/// The rows of the first Markdown table under `heading` whose header is `header`, cells trimmed
/// and stripped of backticks.
func markdownTable(_ text: String, heading: String, header: String) -> [[String]] {
  guard let start = text.range(of: "\n" + heading + "\n") else { return [] }
  let section = text[start.upperBound...].components(separatedBy: "\n## ")[0]
  var rows = [[String]]()
  var inTable = false
  for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
    if line == header {
      inTable = true
      continue
    }
    guard inTable else { continue }
    if !line.hasPrefix("|") { break }
    let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map {
      $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "")
    }
    if cells.allSatisfy({ $0.allSatisfy { $0 == "-" } }) { continue }
    rows.append(cells)
  }
  return rows
}

/// The CI dependency graph as docs/operations.md documents it: workflow file -> job -> row.
func documentedGraph(_ doc: String) -> [String: [String: DocumentedJob]] {
  var out = [String: [String: DocumentedJob]]()
  for r in markdownTable(doc, heading: "## CI workflows", header: "| workflow | job | needs | gates a merge | timeout (min) |")
  where r.count == 5 {
    let needs = r[2] == "—" ? [] : r[2].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    out[r[0], default: [:]][r[1]] = DocumentedJob(needs: Set(needs), gates: r[3] == "yes", timeout: Int(r[4]) ?? -1)
  }
  return out
}

/// Everything wrong with a set of workflows (file name -> parsed document) measured against the
/// documented graph and secrets; empty when all is well.
func workflowProblems(_ workflows: [String: Any], documented: [String: [String: DocumentedJob]], documentedSecrets: Set<String>)
  -> [String]
{
  var problems = [String]()
  var usedSecrets = Set<String>()
  for (file, value) in workflows.sorted(by: { $0.key < $1.key }) {
    guard let wf = value as? [String: Any] else {
      problems.append("\(file): not a mapping")
      continue
    }
    guard wf["name"] is String else { problems.append("\(file): no name") ; continue }
    guard let on = wf["on"] else { problems.append("\(file): no 'on' triggers"); continue }
    let triggers: Set<String> =
      (on as? String).map { [$0] } ?? Set((on as? [String]) ?? []).union((on as? [String: Any]).map { Set($0.keys) } ?? [])
    if triggers.isEmpty { problems.append("\(file): no triggers") }
    guard let jobs = wf["jobs"] as? [String: Any], !jobs.isEmpty else {
      problems.append("\(file): no jobs")
      continue
    }
    var needs = [String: [String]]()
    for (name, j) in jobs.sorted(by: { $0.key < $1.key }) {
      guard let job = j as? [String: Any] else {
        problems.append("\(file): job '\(name)' is not a mapping")
        continue
      }
      let timeout = job["timeout-minutes"] as? Int
      if timeout == nil || timeout! <= 0 || timeout! > 360 {
        problems.append("\(file): job '\(name)' has no timeout-minutes between 1 and 360")
      }
      if job["runs-on"] == nil { problems.append("\(file): job '\(name)' has no runs-on") }
      if ((job["steps"] as? [Any]) ?? []).isEmpty { problems.append("\(file): job '\(name)' has no steps") }
      let n = (job["needs"] as? String).map { [$0] } ?? (job["needs"] as? [String]) ?? []
      needs[name] = n
      for d in n where jobs[d] == nil { problems.append("\(file): job '\(name)' needs '\(d)', which does not exist") }
      let gates = triggers.contains("pull_request") && (job["continue-on-error"] as? Bool) != true
      if let doc = documented[file]?[name] {
        if doc.needs != Set(n) { problems.append("\(file): job '\(name)' needs \(n.sorted()), documented \(doc.needs.sorted())") }
        if doc.timeout != timeout {
          problems.append("\(file): job '\(name)' has timeout \(timeout.map(String.init) ?? "none"), documented \(doc.timeout)")
        }
        if doc.gates != gates {
          problems.append("\(file): job '\(name)' \(gates ? "gates" : "does not gate") a merge, documented the other way")
        }
      } else {
        problems.append("\(file): job '\(name)' is not in the documented graph")
      }
    }
    for name in (documented[file] ?? [:]).keys.sorted() where jobs[name] == nil {
      problems.append("\(file): documented job '\(name)' does not exist")
    }
    if let cycle = findCycle(needs) { problems.append("\(file): the needs graph has a cycle: \(cycle.joined(separator: " -> "))") }
    let (secrets, leaks) = secretUse(wf, path: file)
    usedSecrets.formUnion(secrets)
    problems += leaks
  }
  for name in documented.keys.sorted() where workflows[name] == nil {
    problems.append("documented workflow '\(name)' does not exist")
  }
  let undocumented = usedSecrets.subtracting(documentedSecrets)
  if !undocumented.isEmpty { problems.append("secrets used but not documented: \(undocumented.sorted())") }
  let unused = documentedSecrets.subtracting(usedSecrets)
  if !unused.isEmpty { problems.append("secrets documented but not used: \(unused.sorted())") }
  return problems
}

/// A cycle in a `needs` graph, as the jobs along it, or nil.
func findCycle(_ needs: [String: [String]]) -> [String]? {
  var state = [String: Int]()  // 1 visiting, 2 done
  var path = [String]()
  func visit(_ n: String) -> [String]? {
    if state[n] == 2 { return nil }
    if state[n] == 1 { return Array(path[path.firstIndex(of: n)!...]) + [n] }
    state[n] = 1
    path.append(n)
    for d in needs[n] ?? [] { if let c = visit(d) { return c } }
    path.removeLast()
    state[n] = 2
    return nil
  }
  for n in needs.keys.sorted() { if let c = visit(n) { return c } }
  return nil
}

/// The secrets a workflow reads, and every place that holds a secret any other way: a
/// `secrets.` reference outside `${{ }}`, a credential-named variable or input whose value is
/// not exactly `${{ secrets.NAME }}`, or a literal that looks like a key.
func secretUse(_ value: Any, path: String) -> (Set<String>, [String]) {
  var used = Set<String>()
  var problems = [String]()
  let credentialName = try! NSRegularExpression(pattern: "(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)", options: [.caseInsensitive])
  let exactSecret = try! NSRegularExpression(pattern: #"^\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$"#)
  let expression = try! NSRegularExpression(pattern: #"\$\{\{(.*?)\}\}"#)
  let reference = try! NSRegularExpression(pattern: #"secrets\.([A-Za-z_][A-Za-z0-9_]*)"#)
  let literal = try! NSRegularExpression(
    pattern: #"(AKIA[0-9A-Z]{16}|-----BEGIN|"private"\s*:|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-|[A-Za-z0-9+/]{40,}={0,2})"#)
  func matches(_ re: NSRegularExpression, _ s: String) -> [NSTextCheckingResult] {
    re.matches(in: s, range: NSRange(s.startIndex..., in: s))
  }
  func walk(_ v: Any, _ where_: String, key: String?) {
    if let s = v as? String {
      var outside = s
      for m in matches(expression, s).reversed() {
        let inner = String(s[Range(m.range(at: 1), in: s)!])
        for r in matches(reference, inner) { used.insert(String(inner[Range(r.range(at: 1), in: inner)!])) }
        outside.replaceSubrange(Range(m.range, in: outside)!, with: "")
      }
      if !matches(reference, outside).isEmpty { problems.append("\(where_): 'secrets.' used outside ${{ }}") }
      if !matches(literal, outside).isEmpty { problems.append("\(where_): a literal that looks like a secret") }
      if let key, !matches(credentialName, key).isEmpty, matches(exactSecret, s).isEmpty {
        problems.append("\(where_): '\(key)' is not set from ${{ secrets.NAME }}")
      }
    } else if let d = v as? [String: Any] {
      let holdsValues = ["env", "with"].contains(key ?? "")
      for (k, x) in d { walk(x, where_ + "." + k, key: holdsValues ? k : (x is String ? nil : k)) }
    } else if let a = v as? [Any] {
      for (i, x) in a.enumerated() { walk(x, where_ + "[\(i)]", key: nil) }
    } else if key.map({ !matches(credentialName, $0).isEmpty }) == true {
      problems.append("\(where_): '\(key!)' holds a literal value")
    }
  }
  walk(value, path, key: nil)
  return (used, problems)
}

@Suite struct WorkflowTests {
  let dir = checkout + "/.github/workflows"

  func load() throws -> (workflows: [String: Any], doc: String) {
    let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }
    let docs = try yamlDocuments(names.sorted().map { dir + "/" + $0 })
    var byName = [String: Any]()
    for (p, v) in docs { byName[(p as NSString).lastPathComponent] = v }
    return (byName, try String(contentsOfFile: checkout + "/docs/operations.md", encoding: .utf8))
  }

  func documentedSecrets(_ doc: String) -> Set<String> {
    var out = Set<String>()
    for r in markdownTable(doc, heading: "## CI workflows", header: "| name | kind | used by | what |") where r.count == 4 && r[1].hasPrefix("secret") {
      for n in r[0].split(separator: ",") { out.insert(n.trimmingCharacters(in: .whitespaces)) }
    }
    return out
  }

  @Test("every workflow is valid YAML and agrees with the graph, timeouts, gating and secrets in docs/operations.md")
  func workflowsMatchTheDocumentedGraph() throws {
    let (workflows, doc) = try load()
    #expect(Set(workflows.keys) == ["checks.yml", "nightly-validation.yml", "publish.yml", "secret-scan.yml"])
    let graph = documentedGraph(doc)
    #expect(graph.values.reduce(0) { $0 + $1.count } == 13)
    let secrets = documentedSecrets(doc)
    #expect(secrets.contains("TSUKU_INDEX_KEY") && secrets.contains("GITHUB_TOKEN"))
    let problems = workflowProblems(workflows, documented: graph, documentedSecrets: secrets)
    #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
  }

  @Test("triggers: checks and the secret scan on pull requests, publish on registry content on main, nightly on a schedule")
  func triggers() throws {
    let (w, _) = try load()
    func on(_ f: String) -> [String: Any] { ((w[f] as? [String: Any])?["on"] as? [String: Any]) ?? [:] }
    #expect(on("checks.yml")["pull_request"] != nil)
    #expect((on("checks.yml")["push"] as? [String: Any])?["branches"] as? [String] == ["main"])
    #expect(on("secret-scan.yml")["pull_request"] != nil)
    #expect(on("secret-scan.yml")["schedule"] != nil)
    let push = on("publish.yml")["push"] as? [String: Any]
    #expect(push?["branches"] as? [String] == ["main"])
    #expect(push?["paths"] as? [String] == ["registry-index/source/**"])
    #expect(on("publish.yml")["pull_request"] == nil)
    let cron = (on("nightly-validation.yml")["schedule"] as? [[String: Any]])?.first?["cron"] as? String
    #expect(cron?.split(separator: " ").count == 5)
    #expect(on("nightly-validation.yml")["workflow_dispatch"] != nil)
    #expect(on("nightly-validation.yml")["pull_request"] == nil)
  }

  @Test("the nightly run checks health first, validates with the git fallback, opens an issue on exit 2 or 5 and uploads the dashboard")
  func nightlyValidationFlow() throws {
    let (w, _) = try load()
    let jobs = ((w["nightly-validation.yml"] as? [String: Any])?["jobs"] as? [String: Any]) ?? [:]
    func script(_ job: String) -> String {
      (((jobs[job] as? [String: Any])?["steps"] as? [[String: Any]]) ?? []).compactMap { $0["run"] as? String }.joined(separator: "\n")
    }
    #expect(script("health").contains("tsuku registry health --source \"$BUCKET\""))
    #expect(script("health").contains("--timeout 5"))
    let validate = script("validate")
    for flag in ["registry validate --source \"$BUCKET\"", "--fallback \"git+file://", "--status-md status.md", "--issue-md issue.md", "--json"] {
      #expect(validate.contains(flag), "validate lacks \(flag)")
    }
    let report = jobs["report"] as? [String: Any]
    #expect(report?["if"] as? String == "always()")
    #expect((report?["permissions"] as? [String: Any])?["issues"] as? String == "write")
    #expect(script("report").contains("success:2)") && script("report").contains("success:5)"))
    #expect(script("report").contains("gh issue create"))
    let uploads = ((jobs["validate"] as? [String: Any])?["steps"] as? [[String: Any]] ?? []).filter {
      ($0["uses"] as? String)?.hasPrefix("actions/upload-artifact") == true
    }
    #expect(((uploads.first?["with"] as? [String: Any])?["path"] as? String)?.contains("status.md") == true)
  }

  @Test("the checker catches a missing timeout, a cycle, an undocumented job, a literal secret and a duplicate key")
  func checkerCatchesBrokenWorkflows() throws {
    let tmp = try TemporaryDirectory(prefix: "tsuku-workflows")
    let bad = """
      name: bad
      on:
        pull_request:
      env:
        API_TOKEN: hunter2-literal
        OTHER: "echo ${{ secrets.REAL }} and secrets.LEAK"
      jobs:
        a:
          runs-on: ubuntu-24.04
          needs: b
          steps:
            - run: echo \("AKIA" + "ABCDEFGHIJKLMNOP")
        b:
          runs-on: ubuntu-24.04
          timeout-minutes: 5
          needs: a
          steps:
            - run: "true"
      """
    try Data(bad.utf8).write(to: URL(fileURLWithPath: tmp.file("bad.yml")))
    let docs = try yamlDocuments([tmp.file("bad.yml")])
    let graph = ["bad.yml": ["a": DocumentedJob(needs: ["b"], gates: true, timeout: 5)]]
    let problems = workflowProblems(["bad.yml": docs[tmp.file("bad.yml")]!], documented: graph, documentedSecrets: ["GONE"])
    let text = problems.joined(separator: "\n")
    #expect(text.contains("job 'a' has no timeout-minutes"))
    #expect(text.contains("has timeout none, documented 5"))
    #expect(text.contains("the needs graph has a cycle: a -> b -> a"))
    #expect(text.contains("job 'b' is not in the documented graph"))
    #expect(text.contains("'API_TOKEN' is not set from ${{ secrets.NAME }}"))
    #expect(text.contains("'secrets.' used outside ${{ }}"))
    #expect(text.contains("steps[0].run: a literal that looks like a secret"))
    #expect(text.contains("secrets used but not documented: [\"REAL\"]"))
    #expect(text.contains("secrets documented but not used: [\"GONE\"]"))

    try Data("name: x\non: push\non: pull_request\njobs: {}\n".utf8).write(to: URL(fileURLWithPath: tmp.file("dup.yml")))
    #expect(throws: WorkflowProblem.self) { try yamlDocuments([tmp.file("dup.yml")]) }
    try Data("name: x\n  on: [\n".utf8).write(to: URL(fileURLWithPath: tmp.file("broken.yml")))
    #expect(throws: WorkflowProblem.self) { try yamlDocuments([tmp.file("broken.yml")]) }
  }

  @Test("the documented graph is read from the table, and a job that would not gate is caught")
  func gatingMismatchIsCaught() throws {
    let (workflows, doc) = try load()
    var graph = documentedGraph(doc)
    #expect(graph["checks.yml"]?["size-report"] == DocumentedJob(needs: ["build"], gates: false, timeout: 10))
    #expect(graph["nightly-validation.yml"]?["validate"]?.needs == ["build", "health"])
    graph["checks.yml"]?["size-report"]?.gates = true
    let problems = workflowProblems(workflows, documented: graph, documentedSecrets: documentedSecrets(doc))
    #expect(problems == ["checks.yml: job 'size-report' does not gate a merge, documented the other way"])
  }
}
