// The libFuzzer binary. libFuzzer (linked by `-sanitize=fuzzer`) brings its own `main`, which
// calls the two C entry points below; so this module is compiled with `-parse-as-library`
// (tools/fuzz passes it) and has no `main` of its own, which would clash with libFuzzer's.
import FuzzTargets
import Foundation

@_cdecl("LLVMFuzzerInitialize")
public func libFuzzerInitialize(
  _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>
) -> Int32 {
  fuzzInitialize()
  return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func libFuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
  runOne(Data(bytes: bytes, count: count))
  return 0
}
