import Foundation
import PhalanxTensor

/// A gradient all-reduce that overlaps back-propagation, in buckets (PyTorch DDP's design): the
/// flat gradient buffer is cut, from its end, into buckets of `bucketElements`; as backward
/// reports that the gradients from some offset on are final (`ready(from:)`), a communication
/// thread all-reduces each bucket that has become whole, while backward goes on with the
/// layers before it. `finish()` reduces the rest and waits.
///
/// Every member cuts the same buckets (they depend only on the buffer's length and the bucket
/// size) and reduces them in the same order, so the collectives match across members whatever
/// the timing. A failed bucket ends the step: the later buckets are not started and `finish()`
/// throws the error, which an elastic loop handles as any failed collective (the step is
/// discarded on every member). The communicator is used only by the communication thread
/// between `begin` and the return of `finish()` or `cancel()`. The thread keeps the reducer
/// alive until `close()`.
///
/// ```swift
/// let reducer = BucketedAllReduce(bucketElements: 65_536)
/// reducer.begin(model.store.gradients.buffer, over: communicator)
/// try model.backward(loss.gradient, gradientsReady: reducer.ready(from:))
/// try reducer.finish()
/// ```
public final class BucketedAllReduce: @unchecked Sendable {
    // Guarded by `condition`: every field below, shared by the caller and the thread.
    private let condition = NSCondition()
    private var buffer: UnsafeMutableBufferPointer<Float>?
    private var communicator: (any Communicator)?
    private var options = CollectiveOptions.default
    /// Gradients at `readyFrom..<count` are final.
    private var readyFrom = 0
    /// Buckets at `reducedFrom..<count` are reduced (or being reduced: `busy`).
    private var reducedFrom = 0
    private var busy = false
    private var failure: (any Error)?
    private var closed = false
    private var threadEnded = false
    private var thread: Thread?
    private var reducedBuckets = 0

    /// Elements per bucket (the last one, at the buffer's start, may be shorter).
    public let bucketElements: Int

    /// A reducer with buckets of `bucketElements` (at least 1); its thread starts with the first
    /// step and runs until `close()`.
    public init(bucketElements: Int) {
        self.bucketElements = max(1, bucketElements)
    }

    /// Buckets all-reduced in the last step (for tests and logs).
    public var bucketsReduced: Int { condition.withLock { reducedBuckets } }

    /// Starts a step on `buffer`: nothing is ready yet.
    public func begin(_ buffer: UnsafeMutableBufferPointer<Float>, over communicator: any Communicator, options: CollectiveOptions = .default) {
        condition.withLock {
            self.buffer = buffer
            self.communicator = communicator
            self.options = options
            readyFrom = buffer.count
            reducedFrom = buffer.count
            failure = closed ? Closed() : nil
            reducedBuckets = 0
            if thread == nil, !closed {
                let thread = Thread { [self] in serve() }
                thread.name = "phalanx-bucketed-allreduce"
                thread.start()
                self.thread = thread
            }
            condition.broadcast()
        }
    }

    /// Backward's report: every gradient at `offset..<count` is final. Buckets that became
    /// whole start on the communication thread. Throws the failure of an earlier bucket, so
    /// that backward stops early when the step is lost anyway.
    /// - Throws: the `CollectiveError` of a failed bucket.
    public func ready(from offset: Int) throws {
        try condition.withLock {
            if let failure { throw failure }
            if offset < readyFrom {
                readyFrom = max(offset, 0)
                condition.broadcast()
            }
        }
    }

    /// Reduces the buckets not yet reduced and waits for all of them.
    /// - Throws: the first bucket's `CollectiveError` (the step is lost on every member).
    public func finish() throws {
        try condition.withLock {
            readyFrom = 0
            condition.broadcast()
            while failure == nil, !threadEnded, busy || reducedFrom > 0, buffer != nil { condition.wait() }
            defer { buffer = nil; communicator = nil }
            if let failure { throw failure }
            // Closed while buckets were left: the step is not reduced.
            if reducedFrom > 0 { throw Closed() }
        }
    }

    /// Abandons the step (backward failed): starts no more buckets and waits for the one in
    /// flight, so that the communicator is free again when it returns.
    public func cancel() {
        condition.withLock {
            // Without a buffer the thread starts nothing more; the bucket in flight holds its own.
            buffer = nil
            communicator = nil
            while busy { condition.wait() }
        }
    }

    /// Stops the communication thread once the bucket in flight (if any) is reduced; a step
    /// that still has buckets left then fails with `Closed`, and so does every later one.
    public func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    /// The error of a step on a closed reducer.
    public struct Closed: Error, CustomStringConvertible {
        /// A one-line message.
        public var description: String { "the bucketed all-reduce was closed before the step's buckets were reduced" }
    }

    /// The communication thread: reduces each bucket once it is whole, from the buffer's end.
    private func serve() {
        condition.lock()
        defer {
            threadEnded = true
            condition.broadcast()
            condition.unlock()
        }
        while !closed {
            guard let buffer, let communicator, failure == nil, reducedFrom > 0,
                  readyFrom <= Self.bucketStart(end: reducedFrom, size: bucketElements) else {
                condition.wait()
                continue
            }
            let start = Self.bucketStart(end: reducedFrom, size: bucketElements)
            let bucket = UnsafeMutableBufferPointer(rebasing: buffer[start..<reducedFrom])
            let options = self.options
            busy = true
            condition.unlock()
            var error: (any Error)?
            do { try communicator.allReduce(bucket, op: .sum, options: options) } catch let failed { error = failed }
            condition.lock()
            busy = false
            if let error { failure = error } else {
                reducedFrom = start
                reducedBuckets += 1
            }
            condition.broadcast()
        }
    }

    /// Buckets are cut from the buffer's end: the one ending at `end` starts `size` earlier
    /// (or at 0), whatever the timing of `ready`.
    static func bucketStart(end: Int, size: Int) -> Int {
        // Boundaries sit at `count - k·size`; `end` is one of them, so the next is `end - size`.
        max(end - size, 0)
    }
}
