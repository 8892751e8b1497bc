import Foundation
import Store

/// What one staged section needs before `publish --staged` accepts it: the keys of one role
/// in one root version, how many of them must sign, and how many validly have.
public struct SectionNeed: Sendable, Equatable {
  public var section: DocumentType
  public var role: Role
  public var rootVersion: Int
  public var keyids: [String]
  public var threshold: Int
  public var signed: Int

  /// `index: 1 of 2 required`; a staged root names the root version whose keys count.
  public var line: String {
    let which = section == .root ? " (root version \(rootVersion) keys)" : ""
    return "\(section.rawValue)\(which): \(signed) of \(threshold) required"
  }
}

extension Staged {
  /// `index` or `root version N`, for messages.
  var stagedKind: String {
    if let v = root?.payloadBytes.flatMap({ try? RootPayload.parse($0, what: "the staged root").version }) {
      return "root version \(v)"
    }
    return "index"
  }

  /// Per staged section, the role whose threshold it must meet and how many valid signatures
  /// it has, checked exactly as a client checks them (a key that signed twice counts once).
  /// A staged index is checked against the root it was staged under; a staged root N+1
  /// against both root N's and its own root keys. Empty when the file records no root to
  /// check against (staged by an older version) and the section is an index.
  public func signingNeeds() throws -> [SectionNeed] {
    let current = try signing_root.map { env -> RootPayload in
      guard let raw = env.payloadBytes else { throw TsukuError(.integrity, "the staged file's root has a payload that is not base64") }
      return try RootPayload.parse(raw, what: "the staged file's root")
    }
    func need(_ env: Envelope, _ section: DocumentType, _ role: Role, _ r: RootPayload) -> SectionNeed {
      let rk = r.roles[role.rawValue]
      return SectionNeed(
        section: section, role: role, rootVersion: r.version, keyids: rk?.keyids ?? [], threshold: rk?.threshold ?? 0,
        signed: env.validSigners(role: role, root: r).count)
    }
    if let root {
      guard let raw = root.payloadBytes else { throw TsukuError(.integrity, "the staged root has a payload that is not base64") }
      let next = try RootPayload.parse(raw, what: "the staged root")
      return (current.map { [need(root, .root, .root, $0)] } ?? []) + [need(root, .root, .root, next)]
    }
    guard let file = index, let current else { return [] }
    var needs = [SectionNeed]()
    if sign.contains(.index) { needs.append(need(file.index, .index, .index, current)) }
    if sign.contains(.revocation), let r = file.revocation { needs.append(need(r, .revocation, .revocation, current)) }
    return needs
  }

  /// `the index section is signed by the 'index' keys of root version 1 (ids: a, b)`, for
  /// every section, in one line.
  static func describe(_ needs: [SectionNeed]) -> String {
    needs.map { n in
      let ids = n.keyids.sorted().joined(separator: ", ")
      return "the \(n.section.rawValue) section is signed by the '\(n.role.rawValue)' keys of root version \(n.rootVersion) (\(ids))"
    }.joined(separator: "; ")
  }
}
