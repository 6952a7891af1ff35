import Foundation

/// What a worker's `/healthz` says: alive, ready to train (in a ring, holding the job's state),
/// and where it is (member id, epoch, step, members). Thread-safe: the training thread writes,
/// the HTTP server reads.
public final class HealthStatus: @unchecked Sendable {
    /// One reading.
    public struct Snapshot: Codable, Sendable, Equatable {
        /// The process answers (always true in a served snapshot).
        public var live = true
        /// Training in a ring with the job's state (false while a change of members is being
        /// agreed, before the first ring, and after the run ended).
        public var ready = false
        /// This member's id (nil before it was admitted).
        public var member: Int?
        /// The membership epoch.
        public var epoch: UInt64 = 0
        /// The next step to train (the number of committed steps).
        public var step = 0
        /// Members in the ring.
        public var members = 0
    }

    // Guarded by `lock`.
    private let lock = NSLock()
    private var current = Snapshot()

    /// A status that is live and not yet ready.
    public init() {}

    /// The reading now.
    public var snapshot: Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Changes the reading under the lock.
    public func update(_ change: (inout Snapshot) -> Void) {
        lock.lock()
        change(&current)
        lock.unlock()
    }

    /// The reading as one line of JSON (sorted keys).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(snapshot)).flatMap { String(data: $0, encoding: .utf8) } ?? "{\"live\":true}"
    }
}
