import ArgumentParser
import Foundation
import Store
import Sync

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

extension Tsuku.Registry {
  struct Mirror: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Copy a whole registry, verified, from one store to others: roots, index, archived indexes, every blob.",
      discussion: """
        Reads the source's root chain (every version, each verified by the one before, from \
        root/1; with --root, the chain must hold that root), index.json and the archive copies \
        of the K-1 versions before it (each verified under the root it names; an expired index \
        is copied with a warning), and every blob they pin. Each target is listed once and gets \
        only what it lacks, fetched from the source in bulk (the packs first) and checked \
        against its SHA-256 before anything is written; one change per target (a git target \
        gets one commit): blobs, roots, archive copies, then index.json, written only if the \
        target's index.json is still the one read. Forward only: a target with a newer root, \
        index or revocation list version, or a root the source's chain does not extend, is \
        refused alone (the others are still copied). A second run copies nothing. \
        Exit 0 every target is at the source's state; 4 the source does not verify (a corrupt \
        blob: nothing is written); otherwise the status of the first target refused or failed \
        (1 newer or diverged, 4 its index.json does not verify).
        """)
    @Option(help: "The store to copy (directory, git+file://, s3:// or https://).") var from: String
    @Option(parsing: .upToNextOption, help: "A store to copy into (directory, git+file:// or s3://); repeatable.")
    var to: [String] = []
    @Option(help: "A trusted root file: the source's chain must hold it.") var root: String?
    @Option(help: "How many index versions are copied (the current one and the archived ones before it).")
    var keepIndexVersions = 3
    @Flag(help: "Verify the source and report what each target lacks; write nothing.") var dryRun = false
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
      if to.isEmpty { throw ValidationError("--to is required at least once") }
      if !(1...1000).contains(keepIndexVersions) {
        throw ValidationError("invalid --keep-index-versions '\(keepIndexVersions)': expected 1 to 1000")
      }
    }

    func run() throws {
      let env = ProcessEnvironment.current
      let source = try StoreURL.openReader(from)
      var targets = [(url: String, store: any ObjectStore)]()
      for url in to {
        if url == from { throw TsukuError(.usage, "'\(url)' is both the source and a target") }
        targets.append((url, try StoreURL.open(url)))
      }
      let anchor = try root.map { try TrustedRoot.read($0) }
      let line = ProgressLine.fromEnvironment(env)
      let r = try Sync.Mirror.run(
        from: source, to: targets, options: MirrorOptions(keepIndexVersions: keepIndexVersions, dryRun: dryRun, anchor: anchor, now: Date()),
        progress: { line?.show($0) })
      line?.clear()
      for w in r.warnings { Output.warn(w) }
      if json {
        Output.json(r)
      } else {
        for t in r.targets { Output.line(Self.describe(t)) }
        Output.line(Self.summary(r))
      }
      for t in r.targets where t.exit_code != 0 { Output.info("error: \(t.error ?? t.status)") }
      if r.exit_code != 0 { throw ExitCode(r.exit_code) }
    }

    static func describe(_ t: MirrorTargetReport) -> String {
      func v(_ n: Int?) -> String { n.map(String.init) ?? "none" }
      switch t.status {
      case "up_to_date":
        return "up to date: \(t.target), index version \(v(t.index_version_before)) (\(t.objects_present) blobs present)"
      case "copied", "would_copy":
        let verb = t.status == "copied" ? "copied" : "would copy"
        return
          "\(t.status == "copied" ? "copied" : "dry run"): \(t.target), \(verb) \(t.objects_copied) blobs (\(ByteSize.describe(t.bytes_copied))) and \(t.documents_written) documents, \(t.objects_present) present; index version \(v(t.index_version_before)) -> \(v(t.index_version_after)) in \(String(format: "%.2f", t.seconds)) s"
      default:
        return "\(t.status): \(t.target): \(t.error ?? "")"
      }
    }

    static func summary(_ r: MirrorReport) -> String {
      let copied = r.targets.filter { $0.status == "copied" || $0.status == "would_copy" }
      let objects = copied.reduce(0) { $0 + $1.objects_copied }
      let bytes = copied.reduce(0) { $0 + $1.bytes_copied }
      let ok = r.targets.filter { $0.exit_code == 0 }.count
      let what =
        objects == 0 && copied.isEmpty
        ? "nothing to copy: \(ok == r.targets.count ? "every target is" : "\(ok) of \(r.targets.count) targets are") up to date"
        : "\(r.dry_run ? "would copy" : "copied") \(objects) blobs (\(ByteSize.describe(bytes))) to \(copied.count) of \(r.targets.count) targets"
      return
        "\(r.dry_run ? "dry run: " : "")mirror of index version \(r.index_version) (root version \(r.root_version)) from \(r.source): \(what); fetched \(r.fetched_objects) objects (\(ByteSize.describe(r.fetched_bytes)), \(r.fetched_packs) packs) in \(String(format: "%.2f", r.seconds)) s"
    }
  }
}

/// The progress line of a long command on stderr: rewritten in place on a terminal (at most
/// ten times a second), one line per step when `TSUKU_PROGRESS=1` asks for it elsewhere,
/// nothing with `TSUKU_PROGRESS=0` or when stderr is not a terminal.
final class ProgressLine {
  private let terminal: Bool
  private var last = Date.distantPast
  private var shown = false

  private init(terminal: Bool) { self.terminal = terminal }

  static func fromEnvironment(_ env: [String: String]) -> ProgressLine? {
    let tty = isatty(2) == 1
    switch env["TSUKU_PROGRESS"] {
    case "0": return nil
    case "1": return ProgressLine(terminal: tty)
    default: return tty ? ProgressLine(terminal: true) : nil
    }
  }

  func show(_ text: String) {
    if !terminal { return FileHandle.standardError.write(Data(("progress: " + text + "\n").utf8)) }
    let now = Date()
    guard now.timeIntervalSince(last) >= 0.1 else { return }
    last = now
    shown = true
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
  }

  func clear() {
    if terminal && shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
  }
}
