import Foundation
import PhalanxTCP

/// Where a `WitnessServer` keeps its votes and how it casts them: in its own memory
/// (`MemoryWitnessVotes`, lost when the process goes) or in a store shared by several witness
/// servers that then act as one acceptor (`EtcdWitnessVotes`).
public protocol WitnessVoting: Sendable {
    /// Answers a prepare or an accept from `sender` (other messages get no answer).
    func vote(on message: MembershipMessage, from sender: MemberAddress) -> [MembershipAction]
}

/// The witness' votes in this process' memory.
public final class MemoryWitnessVotes: WitnessVoting, @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var acceptor = WitnessAcceptor()

    /// Votes that start empty.
    public init() {}

    /// Answers as the in-memory `WitnessAcceptor` does.
    public func vote(on message: MembershipMessage, from sender: MemberAddress) -> [MembershipAction] {
        lock.lock()
        defer { lock.unlock() }
        return acceptor.handle(message, from: sender)
    }
}
