import Foundation
import Store

/// The witness quorum a home requires of the log's checkpoint (`tsuku init --witness VKEY
/// --witness-quorum N`): at least N of the named witnesses must have a valid cosignature
/// (C2SP tlog-cosignature v1) of the checkpoint's text. A witness cosigns only a checkpoint
/// consistent with every one it cosigned before, so a quorum means that many independent
/// parties saw this tree as an extension of what they saw: a log key holder cannot show one
/// client a fork without also getting the quorum to sign it.
///
/// A cosignature that does not verify, or by a witness this home does not name, counts for
/// nothing; a witness counts once however many lines it has.
public enum WitnessPolicy {
  /// The witnesses `config` names, parsed; a malformed verifier key is a usage error naming it.
  public static func witnesses(_ config: Config) throws -> [CosignatureVerifier] {
    try config.witnesses.map { vkey in
      do { return try CosignatureVerifier(vkey: vkey) } catch let e as TsukuError {
        throw TsukuError(.usage, "config witness: \(e.message)")
      }
    }
  }

  /// Throws `.integrity` (exit 4) when `note` has fewer valid cosignatures from the configured
  /// witnesses than the quorum, naming the checkpoint and the witnesses that did cosign.
  public static func check(_ note: SignedNote, checkpoint: Checkpoint, config: Config) throws {
    guard config.witnessQuorum > 0 else { return }
    try check(note, checkpoint: checkpoint, witnesses: try witnesses(config), quorum: config.witnessQuorum)
  }

  /// The same check with the witnesses and quorum given directly.
  public static func check(
    _ note: SignedNote, checkpoint: Checkpoint, witnesses: [CosignatureVerifier], quorum: Int
  ) throws {
    guard quorum > 0 else { return }
    let signed = note.verifiedCosigners(witnesses)
    guard signed.count < quorum else { return }
    let names = witnesses.filter { signed.contains($0) }.map(\.name)
    let missing = witnesses.filter { !signed.contains($0) }.map(\.name)
    let root = checkpoint.rootHash.prefix(4).map { String(format: "%02x", $0) }.joined()
    throw TsukuError(
      .integrity,
      "checkpoint \(checkpoint.size) \(root) has \(signed.count) of \(quorum) required witness cosignatures (\(names.isEmpty ? "none" : names.joined(separator: ", ")))",
      reason: .badSignature,
      details: missing.isEmpty ? [] : ["no valid cosignature from: \(missing.joined(separator: ", "))"])
  }

  /// The check as the closure a log verification takes, for `config`'s witnesses; a home with
  /// no quorum gets a check that accepts every checkpoint.
  public static func checker(_ config: Config?) throws -> (SignedNote, Checkpoint) throws -> Void {
    guard let config, config.witnessQuorum > 0 else { return { _, _ in } }
    let witnesses = try witnesses(config)
    let quorum = config.witnessQuorum
    return { note, cp in try check(note, checkpoint: cp, witnesses: witnesses, quorum: quorum) }
  }
}
