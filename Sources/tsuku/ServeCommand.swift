import ArgumentParser
import Foundation
import ServeOptions
import Store

#if canImport(Glibc)
  import Glibc
#endif

extension Tsuku {
  /// `tsuku serve`: its options are declared here so that `tsuku serve --help` is complete,
  /// but the server is the `tsuku-serve` executable beside this one (it links SwiftNIO, which
  /// this binary never maps: no other command pays for the server at start).
  struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "serve", abstract: serveAbstract, discussion: serveDiscussion + "\n\n" + exitCodesHelp)

    @OptionGroup var options: ServeOptions

    func run() throws {
      let exe = try Self.serverPath()
      // The arguments after `serve`, without the global flags (-q, -v, --color), which this
      // binary took and the server does not know.
      let args = CommandLine.arguments
      var rest = [String]()
      var i = (args.firstIndex(of: "serve") ?? args.count - 1) + 1
      while i < args.count {
        let a = args[i]
        i += 1
        if ["-q", "--quiet", "-v", "--verbose"].contains(a) || a.hasPrefix("--color=") || a.hasPrefix("--colour=") {
          continue
        }
        if a == "--color" || a == "--colour" {
          i += 1
          continue
        }
        rest.append(a)
      }
      let argv = ([exe] + rest).map { strdup($0) } + [nil]
      execv(exe, argv)
      throw TsukuError(.other, "cannot run '\(exe)': \(String(cString: strerror(errno)))")
    }

    /// `tsuku-serve` in the folder of the running executable (`/proc/self/exe`).
    static func serverPath() throws -> String {
      let self_ = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0]
      let path = (self_ as NSString).deletingLastPathComponent + "/tsuku-serve"
      guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TsukuError(
          .unavailable,
          "'\(path)' not found: build the server beside tsuku with 'swift build -c release --product tsuku-serve'")
      }
      return path
    }
  }
}
