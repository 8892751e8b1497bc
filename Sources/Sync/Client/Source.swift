import Foundation
import Store

/// A source as the client reads it: every request timed and counted under its backend's
/// label. The client uses only the read side of a store through it (`get`, `getMany`,
/// `fetch(into:)`, `readDocument`, and the revisions of the store it wraps), and names the
/// type only here and where `Client.source(_:)` makes one.
typealias Source = MeteredSource
