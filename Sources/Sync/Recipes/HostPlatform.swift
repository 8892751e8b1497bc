import Foundation

/// Platforms as golden files name them: `os[-linux_family]-arch` (`linux-debian-amd64`,
/// `linux-amd64`, `darwin-arm64`).
public enum HostPlatform {
  /// This machine's platform: the OS, on Linux its family from `os-release` when it is one
  /// tsuku knows (debian, rhel, arch, alpine, suse), and the architecture as Go names it.
  public static func current(osRelease: String = "/etc/os-release") -> String {
    var u = utsname()
    uname(&u)
    let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let arch = goArch(machine)
    #if os(Linux)
      if let family = linuxFamily(osRelease: (try? String(contentsOfFile: osRelease, encoding: .utf8)) ?? "") {
        return "linux-\(family)-\(arch)"
      }
      return "linux-\(arch)"
    #else
      return "darwin-\(arch)"
    #endif
  }

  /// `x86_64` → `amd64`, `aarch64` → `arm64`; other names as the kernel gives them.
  public static func goArch(_ machine: String) -> String {
    switch machine {
    case "x86_64", "amd64": "amd64"
    case "aarch64", "arm64": "arm64"
    case "i386", "i686": "386"
    default: machine
    }
  }

  /// The Linux family of an `os-release` file's `ID` (then `ID_LIKE`), or nil when it names
  /// none tsuku knows.
  public static func linuxFamily(osRelease text: String) -> String? {
    var fields = [String: String]()
    for line in text.split(separator: "\n") {
      guard let eq = line.firstIndex(of: "=") else { continue }
      var value = String(line[line.index(after: eq)...])
      if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
        value = String(value.dropFirst().dropLast())
      }
      fields[String(line[..<eq])] = value.lowercased()
    }
    let known: [String: String] = [
      "debian": "debian", "ubuntu": "debian", "linuxmint": "debian", "pop": "debian", "raspbian": "debian",
      "rhel": "rhel", "fedora": "rhel", "centos": "rhel", "rocky": "rhel", "almalinux": "rhel", "amzn": "rhel",
      "ol": "rhel", "arch": "arch", "manjaro": "arch", "endeavouros": "arch", "alpine": "alpine",
      "opensuse": "suse", "opensuse-leap": "suse", "opensuse-tumbleweed": "suse", "sles": "suse", "suse": "suse",
    ]
    for id in [fields["ID"]] + (fields["ID_LIKE"]?.split(separator: " ").map { String($0) } ?? []) {
      if let id, let family = known[id] { return family }
    }
    return nil
  }

  /// The platforms to try for `platform`, most specific first: a family platform falls back
  /// to the generic one of its OS and architecture (`linux-debian-amd64` → `linux-amd64`).
  public static func candidates(_ platform: String) -> [String] {
    let parts = platform.split(separator: "-", omittingEmptySubsequences: false)
    if parts.count == 3 { return [platform, "\(parts[0])-\(parts[2])"] }
    return [platform]
  }
}
