import Foundation
import PhalanxCollectives

/// N ranks as threads of one process, joined in a ring by in-memory mailboxes: a `Transport`
/// for testing collectives and training loops without sockets.
///
/// ```swift
/// let ring = InProcessRing(worldSize: 4)
/// DispatchQueue.concurrentPerform(iterations: 4) { rank in
///     let communicator = RingCommunicator(transport: ring.transport(rank: rank))
///     …
/// }
/// ```
public final class InProcessRing: @unchecked Sendable {
    /// The number of ranks.
    public let worldSize: Int
    /// `mailboxes[i]` holds what rank `i − 1` sent to rank `i`; `backChannels[i]` what rank
    /// `i + 1` sent back to rank `i` (only aborts travel that way).
    let mailboxes: [Mailbox]
    let backChannels: [Mailbox]

    /// Makes a ring of `worldSize` ranks (at least 1).
    public init(worldSize: Int) {
        self.worldSize = Swift.max(worldSize, 1)
        mailboxes = (0..<self.worldSize).map { _ in Mailbox() }
        backChannels = (0..<self.worldSize).map { _ in Mailbox() }
    }

    /// The transport of rank `rank`; call once per rank.
    public func transport(rank: Int) -> InProcessTransport {
        InProcessTransport(ring: self, rank: rank)
    }

    /// Marks rank `rank` dead: its neighbours see a closed connection, as after SIGKILL.
    public func kill(rank: Int) {
        mailboxes[(rank + 1) % worldSize].close(from: rank)
        backChannels[(rank - 1 + worldSize) % worldSize].close(from: rank)
    }
}

/// One direction of one ring edge: a FIFO of frames with a condition variable.
final class Mailbox: @unchecked Sendable {
    enum Frame {
        case data(MessageHeader, [UInt8])
        case abort(CollectiveError)
    }

    private let condition = NSCondition()
    private var frames: [Frame] = []
    private var closedBy: Int?

    func post(_ frame: Frame) {
        condition.lock()
        frames.append(frame)
        condition.broadcast()
        condition.unlock()
    }

    func close(from rank: Int) {
        condition.lock()
        closedBy = rank
        condition.broadcast()
        condition.unlock()
    }

    enum Outcome {
        case frame(Frame)
        case closed(by: Int)
        case timedOut
        case empty
    }

    /// The next frame, waiting until `deadline` (or not at all when `deadline` is nil).
    func take(until deadline: Date?) -> Outcome {
        condition.lock()
        defer { condition.unlock() }
        while frames.isEmpty {
            if let closedBy { return .closed(by: closedBy) }
            guard let deadline else { return .empty }
            if !condition.wait(until: deadline) && frames.isEmpty {
                if let closedBy { return .closed(by: closedBy) }
                return .timedOut
            }
        }
        return .frame(frames.removeFirst())
    }
}
