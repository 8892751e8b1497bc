#if canImport(Glibc)
  import Glibc
#endif

/// How the process's heap treats large buffers.
public enum ProcessMemory {
  /// Buffers of up to a pack (16 MiB) come and go while a sync, a publish or a validate runs.
  /// With a fixed mmap threshold glibc gives each large one back to the kernel when it is
  /// freed; by default it raises the threshold after the first such free and keeps later ones
  /// in the heap, which then stays at its high-water mark (a cold sync at 100K recipes held
  /// 41 MB of heap for one 16 MB batch).
  public static func returnLargeBuffers() {
    #if os(Linux)
      _ = mallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 20)
    #endif
  }
}

#if os(Linux)
  // glibc's <malloc.h>, which the Glibc module does not include.
  @_silgen_name("mallopt") private func mallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
