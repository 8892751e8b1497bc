// swift-tools-version: 5.4
// The fuzz targets of the tsuku recipe store: every parser of untrusted input, driven by
// libFuzzer. A package of its own so the root package stays free of fuzzing flags; it
// depends on the root package by path. Built and run by tools/fuzz:
//
//   swift build --product tsuku-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//   swift build --product tsuku-fuzz-cov -Xswiftc -parse-as-library -Xswiftc -profile-generate ...
//
// The flags go on the command line, not in unsafeFlags here, because the instrumentation must
// reach the Store and Sync modules (the root package's targets) too.
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM compiles an executable's entry point as
// `<module>_main` and links it with `--defsym main=<module>_main`, which fails for the fuzzer,
// whose `main` is libFuzzer's (the module has only the C entry points, no Swift main). The
// code itself is compiled by the current compiler; the root package keeps its own version.
import PackageDescription

let package = Package(
  name: "tsuku-fuzz",
  platforms: [.macOS("13.0")],
  dependencies: [.package(name: "tsuku-store", path: "..")],
  targets: [
    // The entry points shared by both executables: choose a target, run one input.
    .target(
      name: "FuzzTargets",
      dependencies: [.product(name: "Store", package: "tsuku-store"), .product(name: "Sync", package: "tsuku-store")]),
    // libFuzzer's `main` drives `LLVMFuzzerTestOneInput`.
    .executableTarget(name: "tsuku-fuzz", dependencies: ["FuzzTargets"]),
    // Replays a corpus through the same entry point, for the coverage report.
    .executableTarget(name: "tsuku-fuzz-cov", dependencies: ["FuzzTargets"]),
  ]
)
