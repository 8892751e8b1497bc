import Foundation

/// A stage's deadline, checked between steps (each request has its own timeout as well).
struct Deadline {
  let start = Date()
  let seconds: Double
  var elapsed: Double { Date().timeIntervalSince(start) }
  var remaining: Double { max(0, seconds - elapsed) }
  var expired: Bool { elapsed >= seconds }
  func check(_ progress: String) throws { if expired { throw StageTimeout(detail: progress) } }
}

struct StageTimeout: Error {
  let detail: String
}
