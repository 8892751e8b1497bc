import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Store

/// One deadline shared by every request of a command, over real sockets: each request gets
/// what is left of it, a request that starts after it fails at once without going out, and a
/// retry never starts past it. Counts and messages, not times, are checked.
@Suite(.serialized) struct SharedDeadlineTests {
  func options(_ deadline: Deadline) -> TransportOptions {
    var o = TransportOptions()
    o.deadline = deadline
    o.totalTimeout = deadline.seconds
    o.retry = RetryPolicy(maxAttempts: 4, baseDelay: 0.05, maxDelay: 0.1)
    return o
  }

  @Test func requestsAfterTheSharedDeadlineFailAtOnceNamingTheLimit() throws {
    let server = try LoopbackServer { req in req.path == "/a" ? .respond(200, body: Data("ok".utf8)) : .hang }
    defer { server.stop() }
    let deadline = Deadline(startingAtFirstUse: 3)
    let t = CurlTransport(options: options(deadline))
    // The first answer comes at once; the second never does, and ends with the budget; the
    // third starts after it and never reaches the server.
    #expect(try t.perform(HTTPRequest("GET", server.url + "/a")).status == 200)
    let second = t.perform([HTTPRequest("GET", server.url + "/b")])[0]
    let third = t.perform([HTTPRequest("GET", server.url + "/c")])[0]
    for (r, path) in [(second, "/b"), (third, "/c")] {
      guard case .failure(let e) = r else {
        Issue.record("\(path) succeeded past the deadline")
        continue
      }
      #expect(e.code == .unavailable)
      #expect(e.message == "GET '\(server.url)\(path)': the command's time limit of 3 s ran out (TSUKU_API_TIMEOUT)")
    }
    #expect(t.requestCount == 2)
    #expect(deadline.remaining < 0.1)
  }

  @Test func retriesStopWhenTheSharedDeadlineIsSpent() throws {
    let server = try LoopbackServer { _ in
      usleep(300_000)
      return .respond(503)
    }
    defer { server.stop() }
    let t = CurlTransport(options: options(Deadline(startingAtFirstUse: 0.5)))
    let r = t.perform([HTTPRequest("GET", server.url + "/x")])[0]
    // The last 503, or the budget's end during the second attempt.
    switch r {
    case .success(let answer): #expect(answer.status == 503)
    case .failure(let e): #expect(e.message.hasSuffix("the command's time limit of 0.5 s ran out (TSUKU_API_TIMEOUT)"))
    }
    // Four attempts would take 1.2 s; the budget holds two at most.
    #expect(t.requestCount <= 2)
  }

  @Test func waitReporterIsToldOnceNamingTheRequestAndTheTimeLeft() throws {
    let server = try LoopbackServer { _ in .hang }
    defer { server.stop() }
    let lines = Mutex<[String]>([])
    var o = options(Deadline(startingAtFirstUse: 2.5))
    o.waitReporter = WaitReporter { line in lines.withLock { $0.append(line) } }
    let t = CurlTransport(options: o)
    _ = t.perform([HTTPRequest("GET", server.url + "/slow"), HTTPRequest("GET", server.url + "/other")])
    let got = lines.withLock { $0 }
    #expect(got.count == 1, "\(got)")
    #expect(
      got.first?.hasPrefix("no answer yet from GET '\(server.url)/slow' and 1 more request; giving up in at most ")
        == true,
      "\(got)")
    #expect(got.first?.hasSuffix(" s (TSUKU_API_TIMEOUT sets the limit)") == true)
  }
}
