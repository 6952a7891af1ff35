/// What a message carries besides its payload, so that a receiver can tell a stale, foreign or
/// mismatched frame from the one it expects.
public struct MessageHeader: Sendable, Equatable {
    /// The membership epoch (constant for a static job).
    public var epoch: UInt64
    /// The per-communicator sequence number of the collective.
    public var sequence: UInt64
    /// Which collective (see `CollectiveKind`).
    public var kind: CollectiveKind
    /// The step within the collective (ring step · segments + segment).
    public var step: UInt32
    /// The element count the sender called the collective with.
    public var totalCount: UInt64
    /// The payload size in bytes.
    public var payloadBytes: UInt64

    /// Makes a header.
    public init(epoch: UInt64, sequence: UInt64, kind: CollectiveKind, step: UInt32, totalCount: UInt64, payloadBytes: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
        self.kind = kind
        self.step = step
        self.totalCount = totalCount
        self.payloadBytes = payloadBytes
    }
}

/// The collectives, as named in frames and errors.
public enum CollectiveKind: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// In-place all-reduce.
    case allReduce = 1
    /// In-place reduce-scatter.
    case reduceScatter = 2
    /// In-place all-gather.
    case allGather = 3
    /// Broadcast from a root.
    case broadcast = 4
    /// Barrier.
    case barrier = 5

    /// The operation's name.
    public var description: String {
        switch self {
        case .allReduce: return "allReduce"
        case .reduceScatter: return "reduceScatter"
        case .allGather: return "allGather"
        case .broadcast: return "broadcast"
        case .barrier: return "barrier"
        }
    }
}

/// Point-to-point messaging between ring neighbours: the only thing a backend must provide for
/// the generic ring algorithms (`RingCommunicator`) to run over it.
///
/// Each rank talks to its right neighbour `(rank + 1) % worldSize` (sends) and its left
/// neighbour `(rank − 1) % worldSize` (receives). Implementations send from and receive into the
/// caller's memory and must move both directions at once (full duplex).
public protocol Transport: AnyObject {
    /// This rank, `0..<worldSize`.
    var rank: Int { get }
    /// The number of ranks.
    var worldSize: Int { get }

    /// Sends `header` + `outgoing` to the right neighbour while receiving one message from the
    /// left neighbour into `incoming`, whose header must equal `expected` (same epoch, sequence,
    /// kind, step, total count and payload size). Either side may be `nil` (send-only or
    /// receive-only). `progress(bytes)` is called with the number of payload bytes received so
    /// far whenever it grows, so the caller can consume data while the rest arrives.
    ///
    /// - Throws: `CollectiveError` with code `.connectionLost`, `.timeout` (no progress for
    ///   `timeout`), `.sizeMismatch` (the peer's `totalCount` differs), `.protocolViolation`
    ///   (any other header difference) or `.peerAborted` (a neighbour reported a failure).
    func exchange(
        send header: MessageHeader?, _ outgoing: UnsafeRawBufferPointer,
        receive expected: MessageHeader?, into incoming: UnsafeMutableRawBufferPointer,
        timeout: Duration, progress: (Int) throws -> Void
    ) throws

    /// Reports `error` to both neighbours (best effort, never blocks for long) so that every rank
    /// of the ring fails promptly instead of waiting for its timeout. After `abort`, every call
    /// throws `.closed`.
    func abort(_ error: CollectiveError)
}
