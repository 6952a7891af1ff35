import Foundation
import PhalanxCollectives

/// One rank's end of an `InProcessRing`. Payloads are copied through memory; headers are checked
/// exactly as the TCP transport checks them.
public final class InProcessTransport: Transport, @unchecked Sendable {
    /// This rank.
    public let rank: Int
    private let ring: InProcessRing
    private var aborted: CollectiveError?

    init(ring: InProcessRing, rank: Int) {
        self.ring = ring
        self.rank = rank
    }

    /// The number of ranks.
    public var worldSize: Int { ring.worldSize }
    private var left: Int { (rank - 1 + worldSize) % worldSize }
    private var right: Int { (rank + 1) % worldSize }

    /// Posts the outgoing frame, then waits for the incoming one.
    public func exchange(
        send header: MessageHeader?, _ outgoing: UnsafeRawBufferPointer,
        receive expected: MessageHeader?, into incoming: UnsafeMutableRawBufferPointer,
        timeout: Duration, progress: (Int) throws -> Void
    ) throws {
        let context = header ?? expected
        func error(_ code: CollectiveError.Code, peer: Int?, _ message: String) -> CollectiveError {
            CollectiveError(code, during: context, rank: rank, peer: peer, message: message)
        }
        if let aborted { throw error(.closed, peer: aborted.peer, "transport aborted earlier: \(aborted.message)") }
        // An abort from the right neighbour arrives on the back channel.
        if case let .frame(.abort(report)) = ring.backChannels[rank].take(until: nil) {
            throw error(.peerAborted, peer: report.peer, "rank \(report.rank) reported: \(report.message)")
        }
        if let header {
            ring.mailboxes[right].post(.data(header, Array(outgoing)))
        }
        guard let expected else { return }
        let deadline = Date(timeIntervalSinceNow: Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18)
        switch ring.mailboxes[rank].take(until: deadline) {
        case .timedOut, .empty:
            throw error(.timeout, peer: left, "no message from rank \(left) within \(timeout)")
        case let .closed(by: dead):
            throw error(.connectionLost, peer: dead, "connection to rank \(dead) closed")
        case let .frame(.abort(report)):
            throw error(.peerAborted, peer: report.peer, "rank \(report.rank) reported: \(report.message)")
        case let .frame(.data(received, bytes)):
            if received.totalCount != expected.totalCount {
                throw error(
                    .sizeMismatch, peer: left,
                    "rank \(left) called \(expected.kind) with \(received.totalCount) elements, this rank with \(expected.totalCount)")
            }
            guard received == expected, bytes.count == incoming.count else {
                throw error(.protocolViolation, peer: left, "unexpected frame \(received), expected \(expected)")
            }
            bytes.withUnsafeBytes { source in
                if let destination = incoming.baseAddress, let from = source.baseAddress {
                    destination.copyMemory(from: from, byteCount: bytes.count)
                }
            }
            try progress(bytes.count)
        }
    }

    /// Tells both neighbours, once.
    public func abort(_ error: CollectiveError) {
        guard aborted == nil else { return }
        aborted = error
        ring.mailboxes[right].post(.abort(error))
        ring.backChannels[left].post(.abort(error))
    }
}
