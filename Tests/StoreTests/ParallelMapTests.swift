import Foundation
import Synchronization
import Testing

@testable import Store

@Suite struct ParallelMapTests {
  struct Odd: Error, Equatable { let i: Int }

  @Test func resultsComeBackInOrder() {
    #expect(ParallelMap.map(1000, workers: 4) { $0 * 2 } == (0..<1000).map { $0 * 2 })
    #expect(ParallelMap.map(0) { $0 }.isEmpty)
    #expect(ParallelMap.map(5, workers: 1) { $0 } == [0, 1, 2, 3, 4])
  }

  @Test func theFirstFailureInOrderIsThrown() {
    #expect(throws: Odd(i: 7)) {
      try ParallelMap.map(200, workers: 4) { i throws(Odd) -> Int in
        if i >= 7 && i % 7 == 0 { throw Odd(i: i) }
        return i
      }
    }
  }

  @Test func eachWorkerHasItsOwnState() throws {
    let made = Atomic<Int>(0)
    let seen = try ParallelMap.map(
      500, workers: 3, state: { () -> [Int] in
        made.add(1, ordering: .relaxed)
        return []
      }
    ) { mine, i in
      mine.append(i)
      return mine.count
    }
    #expect(seen.count == 500)
    #expect((1...3).contains(made.load(ordering: .relaxed)))
    // Each worker counts only the items it ran (a worker may run none).
    let firsts = seen.filter { $0 == 1 }.count
    #expect(firsts >= 1 && firsts <= made.load(ordering: .relaxed))
  }
}
