import Foundation
import Testing

@testable import Sync

/// The host platform `plan` defaults to, and the fallback from a family platform.
@Suite struct HostPlatformTests {
  @Test func familyComesFromOSReleaseIDThenIDLike() {
    #expect(HostPlatform.linuxFamily(osRelease: "ID=debian\nVERSION_ID=\"12\"\n") == "debian")
    #expect(HostPlatform.linuxFamily(osRelease: "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n") == "debian")
    #expect(HostPlatform.linuxFamily(osRelease: "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n") == "rhel")
    #expect(HostPlatform.linuxFamily(osRelease: "ID=mydistro\nID_LIKE=\"arch\"\n") == "arch")
    #expect(HostPlatform.linuxFamily(osRelease: "ID=alpine\n") == "alpine")
    #expect(HostPlatform.linuxFamily(osRelease: "ID=nixos\n") == nil)
    #expect(HostPlatform.linuxFamily(osRelease: "") == nil)
  }

  @Test func currentPlatformHasTheMachinesArchitecture() {
    let p = HostPlatform.current()
    #expect(p.hasPrefix("linux-"))
    #expect(p.hasSuffix("-amd64") || p.hasSuffix("-arm64"))
    #expect(HostPlatform.current(osRelease: "/nonexistent").split(separator: "-").count == 2)
  }

  @Test func familyPlatformFallsBackToTheGenericOne() {
    #expect(HostPlatform.candidates("linux-debian-amd64") == ["linux-debian-amd64", "linux-amd64"])
    #expect(HostPlatform.candidates("darwin-arm64") == ["darwin-arm64"])
    #expect(HostPlatform.goArch("x86_64") == "amd64")
    #expect(HostPlatform.goArch("aarch64") == "arm64")
  }
}
