import Dispatch
import Foundation
import Synchronization

/// The project's one parallel map: `count` items handed out one at a time to `workers`
/// threads (`DispatchQueue.concurrentPerform`), so a slow item does not hold up a fixed share
/// of the others; results come back in item order.
///
/// A failure stops the items after it from starting, and the first failure in item order is
/// thrown (every item before it has run), so the outcome is the one a plain loop would give.
public enum ParallelMap {
  /// The default number of workers: one per active processor.
  public static var processors: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

  /// `transform` of each of `0..<count`, on up to `workers` threads. A `transform` that
  /// cannot fail makes a map that cannot fail.
  public static func map<T, E: Error>(
    _ count: Int, workers: Int = processors, _ transform: @Sendable (Int) throws(E) -> T
  ) throws(E) -> [T] {
    do {
      return try map(count, workers: workers, state: {}) { _, i in try transform(i) }
    } catch {
      throw error as! E  // only `transform` throws here
    }
  }

  /// `transform` of each of `0..<count`, on up to `workers` threads, each thread with a state
  /// of its own made by `state` (an open file, a buffer) and passed to every item it runs. A
  /// thread whose state cannot be made runs nothing; its error is thrown once the others end.
  public static func map<S, T>(
    _ count: Int, workers: Int = processors, state makeState: @Sendable () throws -> S, _ transform: @Sendable (inout S, Int) throws -> T
  ) throws -> [T] {
    if count == 0 { return [] }
    let n = min(max(1, workers), count)
    if n == 1 {
      var s = try makeState()
      return try (0..<count).map { try transform(&s, $0) }
    }
    let slots = Slots<T>(count)
    let next = Atomic<Int>(0)
    let firstFailure = Atomic<Int>(Int.max)
    let setUpFailure = Mutex<(any Error)?>(nil)
    DispatchQueue.concurrentPerform(iterations: n) { _ in
      var s: S
      do { s = try makeState() } catch {
        setUpFailure.withLock { if $0 == nil { $0 = error } }
        return
      }
      while true {
        let i = next.add(1, ordering: .relaxed).oldValue
        if i >= count || i > firstFailure.load(ordering: .relaxed) { break }
        let r = Result { try transform(&s, i) }
        if case .failure = r { firstFailure.min(i, ordering: .relaxed) }
        slots.set(i, r)
      }
    }
    if let e = setUpFailure.withLock({ $0 }) { throw e }
    return try slots.collect()
  }

  /// One result slot per item, each written by the one thread that ran the item, read after
  /// every thread has ended.
  private final class Slots<T>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Result<T, any Error>?>

    init(_ count: Int) {
      buffer = .allocate(capacity: count)
      buffer.initialize(repeating: nil)
    }

    deinit {
      _ = buffer.deinitialize()
      buffer.deallocate()
    }

    func set(_ i: Int, _ r: Result<T, any Error>) { buffer[i] = r }

    /// The results in order, or the first failure (items after it may not have run).
    func collect() throws -> [T] {
      var out = [T]()
      out.reserveCapacity(buffer.count)
      for slot in buffer {
        guard let slot else { preconditionFailure("an item before the first failure did not run") }
        out.append(try slot.get())
      }
      return out
    }
  }
}
