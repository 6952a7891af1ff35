import Foundation
import PhalanxCollectives
import PhalanxTelemetry
import PhalanxTensor

/// The current epoch's ring, as the step closure sees it: a `Communicator` whose every
/// collective waits at most the elastic failure timeout (a caller's shorter timeout is kept),
/// and any failure leaves the step to be discarded by the loop.
///
/// Code written against `Communicator` (a model's gradient all-reduce, a metric's reduction)
/// runs unchanged inside an elastic step.
public final class ElasticCommunicator: Communicator {
    /// The ring of this epoch.
    public let ring: RingCommunicator
    /// Options used for every call (timeout = the failure timeout).
    public let options: CollectiveOptions
    /// Where all-reduces are counted (bytes, time, bus bandwidth); nil: nowhere.
    public let metrics: PhalanxMetrics?

    /// Wraps the ring of an epoch with the elastic options.
    public init(ring: RingCommunicator, options: CollectiveOptions, metrics: PhalanxMetrics? = nil) {
        self.ring = ring
        self.options = options
        self.metrics = metrics
    }

    /// This member's ring position.
    public var rank: Int { ring.rank }
    /// The number of members.
    public var worldSize: Int { ring.worldSize }

    /// `requested`, with the timeout capped at the failure timeout.
    func bounded(_ requested: CollectiveOptions) -> CollectiveOptions {
        var bounded = requested
        bounded.timeout = min(requested.timeout, options.timeout)
        return bounded
    }

    /// All-reduces `buffer` in place (all members, same element count).
    /// - Throws: `CollectiveError`; the loop then recovers and redoes the step.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options requested: CollectiveOptions) throws {
        guard let metrics else { return try ring.allReduce(buffer, op: op, options: bounded(requested)) }
        let began = ContinuousClock.now
        try ring.allReduce(buffer, op: op, options: bounded(requested))
        let took = ContinuousClock.now - began
        metrics.allReduced(bytes: buffer.count * MemoryLayout<Float>.stride, seconds: Double(took / .nanoseconds(1)) / 1e9, members: ring.worldSize)
    }

    /// Reduces over all members, leaving this member's chunk.
    /// - Throws: `CollectiveError`.
    @discardableResult
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options requested: CollectiveOptions) throws -> Range<Int> {
        try ring.reduceScatter(buffer, op: op, options: bounded(requested))
    }

    /// Gathers every member's chunk on every member.
    /// - Throws: `CollectiveError`.
    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, options requested: CollectiveOptions) throws {
        try ring.allGather(buffer, options: bounded(requested))
    }

    /// Broadcasts `buffer` from ring position `root`.
    /// - Throws: `CollectiveError`.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int, options requested: CollectiveOptions) throws {
        try ring.broadcast(buffer, from: root, options: bounded(requested))
    }

    /// Returns once every member has called it.
    /// - Throws: `CollectiveError`.
    public func barrier(options requested: CollectiveOptions) throws {
        try ring.barrier(options: bounded(requested))
    }
}
