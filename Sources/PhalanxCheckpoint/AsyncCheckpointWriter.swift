import Foundation

/// Saves checkpoints on a background thread so that training does not wait for the disk.
///
/// The training thread only takes a `CheckpointSnapshot` (a copy of the flat buffers) and hands
/// it over with `submit`. At most one save is pending: while one is being written, a newer
/// snapshot replaces an older one that has not started (the newest state wins). `flush` waits
/// for everything submitted; `close` flushes and stops the thread. A failed save is reported by
/// the next `submit`, `flush` or `close`. Call `close` before dropping the writer: its thread
/// holds it until then, and anything not flushed is lost with the process.
public final class AsyncCheckpointWriter: @unchecked Sendable {
    /// The store the snapshots go to.
    public let store: CheckpointStore
    private let condition = NSCondition()
    private var pending: CheckpointSnapshot?
    private var writing = false
    private var closed = false
    private var failure: CheckpointError?
    private var written: [String] = []
    private var supersededCount = 0
    /// Snapshots replaced by a newer one before they were written.
    public var superseded: Int {
        condition.lock()
        defer { condition.unlock() }
        return supersededCount
    }

    private let onWritten: @Sendable (String, Int, Duration) -> Void

    /// Starts the writer thread for `store`; `onWritten(path, step, took)` is called on that
    /// thread after each checkpoint is durable, with how long writing it took.
    public init(store: CheckpointStore, onWritten: @escaping @Sendable (String, Int, Duration) -> Void = { _, _, _ in }) {
        self.store = store
        self.onWritten = onWritten
        let thread = Thread { [self] in run() }
        thread.name = "phalanx-checkpoint-writer"
        thread.start()
    }

    /// Queues `snapshot` for writing and returns at once.
    /// - Throws: the error of an earlier failed save, or `.io` after `close`.
    public func submit(_ snapshot: CheckpointSnapshot) throws {
        condition.lock()
        defer { condition.unlock() }
        if let failure { self.failure = nil; throw failure }
        guard !closed else { throw CheckpointError(.io, path: store.directory, "the writer is closed") }
        if pending != nil { supersededCount += 1 }
        pending = snapshot
        condition.broadcast()
    }

    /// Waits until every submitted snapshot is on disk; returns their paths in order.
    /// - Throws: the error of a failed save.
    @discardableResult
    public func flush() throws -> [String] {
        condition.lock()
        defer { condition.unlock() }
        while pending != nil || writing { condition.wait() }
        if let failure { self.failure = nil; throw failure }
        return written
    }

    /// Flushes and stops the writer thread.
    /// - Throws: the error of a failed save.
    public func close() throws {
        defer {
            condition.lock()
            closed = true
            condition.broadcast()
            condition.unlock()
        }
        try flush()
    }

    private func run() {
        while true {
            condition.lock()
            while pending == nil && !closed { condition.wait() }
            guard let snapshot = pending else {
                condition.unlock()
                return
            }
            pending = nil
            writing = true
            condition.unlock()
            var path: String?
            var saveFailure: CheckpointError?
            do {
                let began = ContinuousClock.now
                let saved = try store.save(snapshot)
                path = saved
                onWritten(saved, snapshot.metadata.step, .now - began)
            } catch let saveError as CheckpointError { saveFailure = saveError } catch {
                saveFailure = CheckpointError(.io, path: store.directory, "\(error)")
            }
            condition.lock()
            writing = false
            if let path { written.append(path) }
            if let saveFailure { failure = saveFailure }
            condition.broadcast()
            condition.unlock()
        }
    }
}
