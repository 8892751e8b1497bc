import Foundation
import Store
import Sync
import Testing

import TestSupport

/// Start-up: the binary links neither libcurl nor libgit2; they are loaded (dlopen) when a
/// command first needs the network or a git source. Checked with the dynamic loader's own
/// account of every library it maps (`LD_DEBUG=files`), on the built binary: one registry
/// published to a directory, a git repository and a SeaweedFS bucket, a home synced from each.
@Suite(.serialized) struct StartupTests {
  struct World {
    let w: CLIWorld
    let directory: String
    let git: String
    let bucket: String?

    var admin: [String: String] {
      ["TSUKU_S3_ACCESS_KEY_ID": S3TestServer.admin.accessKeyID, "TSUKU_S3_SECRET_ACCESS_KEY": S3TestServer.admin.secretAccessKey]
    }

    /// The binary run in HOME_NAME's home with the bucket's credentials.
    func run(_ args: [String], home: String, env: [String: String] = [:]) throws -> CommandResult {
      try runTsuku(
        args, env: w.env.merging(admin) { $1 }.merging(["TSUKU_HOME": w.dir.file(home)]) { $1 }.merging(env) { $1 },
        binary: w.bin, killAfter: 120)
    }

    /// The shared libraries the process mapped, by file name, as the loader reports them:
    /// those of start-up and those loaded later with dlopen.
    func mapped(_ args: [String], home: String) throws -> (result: CommandResult, libraries: Set<String>) {
      let r = try run(args, home: home, env: ["LD_DEBUG": "files"])
      var libraries = Set<String>()
      for line in r.stderr.split(separator: "\n") {
        guard let at = line.range(of: "file=") else { continue }
        let name = line[at.upperBound...].prefix { $0 != " " && $0 != "[" && $0 != ";" }
        libraries.insert(String(name.split(separator: "/").last ?? name))
      }
      return (r, libraries)
    }
  }

  /// Keys, a root and one publish of the sample to a directory, a git repository and (when
  /// SeaweedFS runs here) a bucket, all with repeated --to; a home synced from each.
  func world() throws -> World {
    let w = try CLIWorld()
    // Without SeaweedFS (it cannot be installed here) the bucket is left out; one that is
    // installed but does not start fails the test.
    var bucket: String?
    do {
      let server = try S3TestServer.require()
      bucket = "s3://\(try server.makeBucket(prefix: "startup"))/reg?endpoint=\(server.endpoint)&region=us-east-1"
    } catch is S3TestServer.S3Unavailable {}
    let repo = try makeGitRepository(at: w.dir.file("registry.git"), bare: true)
    let world = World(w: w, directory: w.dir.file("reg-dir"), git: "git+file://\(repo)?dir=store", bucket: bucket)
    let targets = [world.directory, world.git] + (bucket.map { [$0] } ?? [])
    try FileManager.default.createDirectory(atPath: w.dir.file("keys"), withIntermediateDirectories: true)
    for role in ["root", "index", "revocation"] { #expect(try w.run("registry", "keygen", "--out", w.k(role)).status == 0) }
    var args = [
      "registry", "init", "--root-key", w.k("root") + ".pub", "--index-key", w.k("index") + ".pub", "--revocation-key",
      w.k("revocation") + ".pub", "--sign", w.k("root"),
    ]
    for t in targets { args += ["--to", t] }
    var r = try world.run(args, home: "home")
    #expect(r.status == 0, "\(r.stderr)")
    let sample = checkout + "/registry-index/source"
    args = [
      "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded", "--golden",
      sample + "/golden", "--key", w.k("index"), "--revocation-key", w.k("revocation"),
    ]
    for t in targets { args += ["--to", t] }
    r = try world.run(args, home: "home")
    #expect(r.status == 0, "\(r.stderr)")
    for (home, source) in [("home-dir", world.directory), ("home-git", world.git)] + (bucket.map { [("home-s3", $0)] } ?? []) {
      r = try world.run(["init", "--root", world.directory + "/root/1.root.json", "--source", source], home: home)
      #expect(r.status == 0, "\(r.stderr)")
    }
    return world
  }

  static func has(_ libraries: Set<String>, _ prefix: String) -> Bool { libraries.contains { $0.hasPrefix(prefix) } }

  @Test func readingTheCacheMapsNeitherLibcurlNorLibgit2() throws {
    let x = try world()
    let fzf = try #require(FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
    for home in ["home-dir", "home-git"] + (x.bucket == nil ? [] : ["home-s3"]) {
      #expect(try x.run(["update-registry"], home: home).status == 0, "\(home)")
      // The loader reports at all: the C library is there in every process.
      var (r, libraries) = try x.mapped(["show", "fzf"], home: home)
      #expect(r.status == 0, "\(home): \(r.stderr.suffix(400))")
      #expect(r.stdout == fzf, "\(home)")
      #expect(Self.has(libraries, "libc.so"), "\(home): the loader reported nothing: \(r.stderr.prefix(300))")
      #expect(!Self.has(libraries, "libcurl"), "\(home): show mapped \(libraries.sorted())")
      #expect(!Self.has(libraries, "libgit2"), "\(home): show mapped \(libraries.sorted())")
      for args in [["--version"], ["info", "fzf", "--json"], ["list"], ["plan", "ca-certificates", "--platform", "linux-amd64"]] {
        (r, libraries) = try x.mapped(args, home: home)
        #expect(r.status == 0, "\(home) \(args): \(r.stderr.suffix(400))")
        #expect(!Self.has(libraries, "libcurl") && !Self.has(libraries, "libgit2"), "\(home) \(args): \(libraries.sorted())")
      }
    }
  }

  @Test func aGitSourceLoadsLibgit2AndANetworkSourceLibcurl() throws {
    let x = try world()
    var (r, libraries) = try x.mapped(["update-registry"], home: "home-git")
    #expect(r.status == 0, "\(r.stderr.suffix(400))")
    #expect(Self.has(libraries, "libgit2"), "\(libraries.sorted())")
    #expect(!Self.has(libraries, "libcurl"), "a git source on disk needs no network: \(libraries.sorted())")
    (r, libraries) = try x.mapped(["update-registry"], home: "home-dir")
    #expect(r.status == 0, "\(r.stderr.suffix(400))")
    #expect(!Self.has(libraries, "libgit2") && !Self.has(libraries, "libcurl"), "\(libraries.sorted())")
    guard x.bucket != nil else { try Test.cancel("SeaweedFS cannot be installed here") }
    (r, libraries) = try x.mapped(["update-registry"], home: "home-s3")
    #expect(r.status == 0, "\(r.stderr.suffix(400))")
    #expect(Self.has(libraries, "libcurl"), "\(libraries.sorted())")
    #expect(!Self.has(libraries, "libgit2"), "\(libraries.sorted())")
    // A second sync over the bucket is a no-op, one request, and still verified: the same bytes.
    (r, _) = try x.mapped(["update-registry"], home: "home-s3")
    #expect(r.status == 0 && r.out.hasPrefix("registry up to date"), "\(r.out) \(r.stderr.suffix(300))")
    #expect(try x.run(["show", "fzf"], home: "home-s3").stdout == FileManager.default.contents(atPath: checkout + "/registry-index/source/recipes/f/fzf.toml"))
  }

  /// The Swift runtime, Foundation and libcrypto are linked in: none of their shared libraries
  /// is mapped.
  @Test func theSwiftRuntimeFoundationAndLibcryptoAreLinkedIn() throws {
    let w = try CLIWorld()
    let r = try runTsuku(["--version"], env: w.env.merging(["LD_DEBUG": "files"]) { $1 }, binary: w.bin)
    #expect(r.status == 0)
    #expect(r.stderr.contains("file=libc.so"), "\(r.stderr.prefix(300))")
    for lib in ["libswiftCore", "libFoundation", "lib_FoundationICU", "libdispatch", "libcrypto"] {
      #expect(!r.stderr.contains("file=\(lib)"), "\(lib) is mapped")
    }
  }

  /// A reading command is parsed by its own definition, not the whole tree; help, the
  /// parser's own requests and anything the command does not take still go to the root's
  /// parse, with its usage and messages.
  @Test func aReadingCommandParsedAloneAnswersAsTheWholeParserDoes() throws {
    let w = try CLIWorld()
    var r = try w.run("update-registry", "--help")
    #expect(r.status == 0)
    #expect(r.out.contains("USAGE: tsuku update-registry"), "\(r.out.prefix(300))")
    r = try w.run("list", "--nope")
    #expect(r.status == 64)
    #expect(r.stderr.contains("Unknown option '--nope'"), "\(r.stderr)")
    #expect(r.stderr.contains("Usage: tsuku list"), "\(r.stderr)")
    // The root's completion script (every command), not one for `info` alone.
    r = try w.run("info", "--generate-completion-script", "bash")
    #expect(r.status == 0)
    #expect(r.out.contains("\n_tsuku() {"), "\(r.out.prefix(200))")
    #expect(r.out.contains("update-registry"))
    r = try w.run("update-registry", "--offline", "--json")
    #expect(r.status == 5, "\(r.stderr)")
    #expect(r.stderr.contains("no sources with --offline"), "\(r.stderr)")
  }

  /// Linked at a fixed address (ELF type EXEC, not DYN): the loader applies no relocations of
  /// the Swift metadata at start (Package.swift, TSUKU_PIE).
  @Test func tsukuIsLinkedAtAFixedAddress() throws {
    let w = try CLIWorld()
    let header = try #require(FileHandle(forReadingAtPath: w.bin)).readData(ofLength: 18)
    #expect(header.prefix(4) == Data([0x7F, 0x45, 0x4C, 0x46]))
    #expect(header[16] == 2 && header[17] == 0, "e_type \(header[16])")
  }
}
