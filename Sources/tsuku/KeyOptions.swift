import ArgumentParser
import Foundation
import Store
import Sync

/// `--signer 'CMD ARGS'` for every command that signs: external signers that sign with the
/// command's own keys (its `--key`, or `--sign` for `registry init` and `rotate-root`).
struct SignerOptions: ParsableArguments {
  @Option(
    name: .customLong("signer"),
    help: ArgumentHelp(
      "An external signer command, signing beside the key files; repeatable (protocol: 'Private keys and external signers' in docs/cli.md). Key options also take env:NAME (the key's text in an environment variable) and - (standard input).",
      valueName: "cmd"))
  var signers: [String] = []

  /// The keys of `files` (paths, `env:NAME`, `-`), then the signers'.
  func keys(_ files: [String]) throws -> [SigningKey] {
    try files.map(KeyFile.readPrivate) + signers.map(ExternalSigner.key)
  }
}

/// How `registry keygen` protects the new private key.
struct KeyEncryptionOptions: ParsableArguments {
  @Option(
    name: .customLong("passphrase-env"),
    help: ArgumentHelp("Encrypt the private key with the passphrase in this environment variable.", valueName: "name"))
  var passphraseEnv: String?
  @Flag(help: "Encrypt the private key with a passphrase entered (twice) on the terminal.") var encrypt = false

  /// The passphrase, or nil for a key stored in clear.
  func passphrase() throws -> [UInt8]? { try Passphrase.forNewKey(env: passphraseEnv, ask: encrypt) }
}
