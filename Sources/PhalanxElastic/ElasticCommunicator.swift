import PhalanxCollectives
import PhalanxTensor

/// The current epoch's ring, as the step closure sees it: every collective has the elastic
/// failure timeout, and any failure leaves the step to be discarded by the loop.
public struct ElasticCommunicator {
    /// The ring of this epoch.
    public let ring: RingCommunicator
    /// Options used for every call (timeout = the failure timeout).
    public let options: CollectiveOptions

    /// This member's ring position.
    public var rank: Int { ring.rank }
    /// The number of members.
    public var worldSize: Int { ring.worldSize }

    /// All-reduces `buffer` in place (all members, same element count).
    /// - Throws: `CollectiveError`; the loop then recovers and redoes the step.
    public func allReduce(_ buffer: FlatBuffer, op: ReduceOp = .sum) throws {
        try ring.allReduce(buffer.buffer, op: op, options: options)
    }

    /// All-reduces `buffer` in place (all members, same element count).
    /// - Throws: `CollectiveError`.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp = .sum) throws {
        try ring.allReduce(buffer, op: op, options: options)
    }

    /// Broadcasts `buffer` from ring position `root`.
    /// - Throws: `CollectiveError`.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) throws {
        try ring.broadcast(buffer, from: root, options: options)
    }
}
