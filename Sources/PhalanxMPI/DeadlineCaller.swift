import Foundation

/// Runs a blocking MPI call on a helper thread while the calling thread waits with a deadline,
/// so that a call MPI offers only in blocking form (its fastest `MPI_Allreduce`) still ends in a
/// typed error when a peer never arrives. Only one thread is inside MPI at a time
/// (`MPI_THREAD_SERIALIZED`). After a timeout the helper stays blocked in MPI: the caller must
/// treat MPI as unusable (the communicator closes itself).
final class DeadlineCaller: @unchecked Sendable {
    private let work = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var job: (@Sendable () -> Int32)?
    private var result: Int32?
    private var started = false

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        let thread = Thread { [self] in
            while true {
                work.wait()
                lock.lock()
                let next = job
                lock.unlock()
                guard let next else { return }
                let code = next()
                lock.lock()
                result = code
                lock.unlock()
                finished.signal()
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Runs `call` on the helper thread; returns its result, or nil if `timeout` passed first.
    func run(timeout: Duration, _ call: @escaping @Sendable () -> Int32) -> Int32? {
        startIfNeeded()
        lock.lock()
        job = call
        result = nil
        lock.unlock()
        work.signal()
        // Sleep rather than spin: the helper (and MPI's own polling) needs the core.
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        guard finished.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return result
    }
}
