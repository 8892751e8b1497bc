// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "tsuku-store",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "tsuku", targets: ["tsuku"]),
    .library(name: "Store", targets: ["Store"]),
    .library(name: "Sync", targets: ["Sync"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
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
        "Store", "Sync",
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
