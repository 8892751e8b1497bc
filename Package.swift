// swift-tools-version: 6.0
import PackageDescription

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
    .systemLibrary(
      name: "COpenSSL", pkgConfig: "libcrypto",
      providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
    .systemLibrary(
      name: "CCurl", pkgConfig: "libcurl",
      providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]),
    .systemLibrary(
      name: "CGit2", pkgConfig: "libgit2",
      providers: [.apt(["libgit2-dev"]), .brew(["libgit2"])]),
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
