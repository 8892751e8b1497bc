// swift-tools-version: 6.0
import PackageDescription

let packageRoot = Context.packageDirectory

// `tsuku` is linked at a fixed address (not position-independent), as Go links its programs
// on Linux by default: at start the loader then has no ~100,000 relocations of the Swift
// metadata to apply, and a command touches ~270 fewer pages (docs/architecture.md,
// "Start-up"). The shared libraries, the heap and the stack keep their random addresses.
// A packager who wants a position-independent `tsuku` builds with TSUKU_PIE=1.
let fixedAddress = Context.environment["TSUKU_PIE"] == nil ? ["-Xclang-linker", "-no-pie"] : []

let package = Package(
  name: "tsuku-store",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "tsuku", targets: ["tsuku"]),
    .executable(name: "tsuku-serve", targets: ["tsuku-serve"]),
    .library(name: "Store", targets: ["Store"]),
    .library(name: "Sync", targets: ["Sync"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    // The HTTP server of `tsuku serve` (only the tsuku-serve executable links it).
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
  ],
  targets: [
    .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
    // libcurl and libgit2: their headers at build time (libcurl4-openssl-dev, libgit2-dev), the
    // libraries loaded on first use (dlopen), so that a command that reads the cache maps
    // neither them nor the ~40 libraries they bring (see the shims).
    .target(name: "CCurl"),
    .target(name: "CGit2"),
    .target(name: "Store", dependencies: ["COpenSSL", "CGit2", "CCurl"]),
    .target(
      name: "Sync",
      dependencies: [
        "Store",
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ]),
    .executableTarget(
      name: "tsuku",
      dependencies: [
        "Store", "Sync", "ServeOptions",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      exclude: ["link"],
      // The Swift runtime, Foundation and libcrypto linked in: a start without their shared
      // libraries' loading and symbol binding (docs/architecture.md, "Start-up").
      // -static-stdlib links what the runtime's own modules autolink; our targets are compiled
      // against the shared Foundation (the tests link them too), whose objects do not name the
      // static Foundation's own parts, so they are named here. `link/` comes first on this
      // executable's library path: its libcrypto.so is a linker script naming libcrypto.a, so
      // the -lcrypto the COpenSSL module asks for is the archive here and the shared library
      // everywhere else (tests, tsuku-serve, tsuku-dev).
      linkerSettings: [
        .unsafeFlags(
          [
            "-L", packageRoot + "/Sources/tsuku/link", "-static-stdlib", "-Xlinker", "--start-group",
            "-lCoreFoundation", "-lFoundationInternationalization", "-lFoundationEssentials", "-l_FoundationICU", "-l_FoundationCollections", "-l_FoundationCShims",
            "-lswiftSynchronization", "-Xlinker", "--end-group",
          ] + fixedAddress, .when(platforms: [.linux]))
      ]),
    // `tsuku serve`: a library (tested in-process and by the CLI tests) and its own executable,
    // so that the `tsuku` binary never links or maps SwiftNIO; `tsuku serve` execs tsuku-serve.
    .target(
      name: "ServeOptions", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .target(
      name: "Serve",
      dependencies: [
        "Store", "Sync",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]),
    .executableTarget(
      name: "tsuku-serve",
      dependencies: [
        "Serve", "ServeOptions", "Store", "Sync",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(
      name: "tsuku-dev",
      dependencies: [
        "Store", "Sync",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .target(name: "TestSupport", dependencies: ["Store", "Sync", "COpenSSL"]),
    .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport"]),
    .testTarget(name: "SyncTests", dependencies: ["Store", "Sync", "TestSupport"]),
    .testTarget(name: "CLITests", dependencies: ["Store", "Sync", "TestSupport"]),
  ],
  swiftLanguageModes: [.v6]
)
