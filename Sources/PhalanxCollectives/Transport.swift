/// What a message carries besides its payload, so that a receiver can tell a stale, foreign or
/// mismatched frame from the one it expects.
public struct MessageHeader: Sendable, Equatable {
    /// The membership epoch (constant for a static job).
    public var epoch: UInt64
    /// The per-communicator sequence number of the collective.
    public var sequence: UInt64
    /// Which collective (see `CollectiveKind`).
    public var kind: CollectiveKind
    /// The frame's position in the collective's wire order (0, 1, …; see `RingSchedule`).
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

    /// Runs a whole schedule of frames: sends its outgoing frames to the right neighbour and
    /// receives its incoming frames from the left one, both in order, starting outgoing frame `i`
    /// only once `schedule.requiredReceives(beforeSending: i)` incoming frames are complete.
    /// The default implementation performs one `exchange` per frame pair (lock-step), which
    /// every transport here uses; a transport may override it (for example to stream).
    ///
    /// - Throws: what `exchange` throws, or `.invalidArgument` when the schedule can make no
    ///   progress (it waits for more incoming frames than it has).
    func run(_ schedule: any FrameSchedule, timeout: Duration) throws

    /// Reports `error` to both neighbours (best effort, never blocks for long) so that every rank
    /// of the ring fails promptly instead of waiting for its timeout. After `abort`, every call
    /// throws `.closed`.
    func abort(_ error: CollectiveError)
}

extension Transport {
    /// Runs `schedule` as a series of `exchange` calls: each sends the next outgoing frame if
    /// it may leave and receives the next incoming frame if one is left.
    public func run(_ schedule: any FrameSchedule, timeout: Duration) throws {
        var sent = 0, received = 0
        let none = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        while sent < schedule.sendCount || received < schedule.receiveCount {
            let sending = sent < schedule.sendCount && schedule.requiredReceives(beforeSending: sent) <= received
            let receiving = received < schedule.receiveCount
            guard sending || receiving else { throw FrameScheduleStall(schedule: schedule, rank: rank, sent: sent).error }
            let outgoing = sending ? schedule.outgoing(sent) : nil
            let incoming = receiving ? schedule.incoming(received) : nil
            let index = received
            try exchange(
                send: outgoing?.header, outgoing?.payload ?? UnsafeRawBufferPointer(none),
                receive: incoming?.header, into: incoming?.destination ?? none, timeout: timeout
            ) { bytes in try schedule.received(index, bytes: bytes) }
            if sending { sent += 1 }
            if receiving { received += 1 }
        }
    }
}
