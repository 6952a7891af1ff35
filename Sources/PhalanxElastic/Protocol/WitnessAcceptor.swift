import PhalanxTCP

/// The tie-breaking vote of an even membership: an acceptor of the agreement that holds no
/// training state and is never a member (the launcher's rendezvous hosts one; an external
/// store can play the same part with compare-and-swap).
///
/// With `n` members (n even) and the witness there are `n + 1` voters, so any two quorums
/// share a voter: half of the members can go on only with the witness's vote, and the other
/// half can then never get a different proposal chosen.
///
/// Held in memory (`MemoryWitnessVotes`), its votes are lost when the process goes, and a
/// witness started again could vote against a proposal it had accepted: a launcher that
/// restarts starts its witness under a new address (members of an even membership then wait
/// for a majority). `EtcdWitnessVotes` keeps each epoch's votes in etcd instead, durably.
public struct WitnessAcceptor: Sendable {
    /// How many epochs of votes are kept (older epochs are long decided).
    static let keptEpochs: UInt64 = 64

    var promised: [UInt64: Ballot] = [:]
    var accepted: [UInt64: AcceptedProposal] = [:]
    /// Epochs below this were forgotten: the witness no longer votes on them (a fresh vote
    /// could contradict the one it forgot).
    var floor: UInt64 = 0

    /// A witness that has voted on nothing.
    public init() {}

    /// What the witness promised and accepted for the change out of one epoch: all it needs to
    /// vote on that epoch again, so a store can keep it (`EtcdWitnessVotes`).
    public struct EpochVotes: Codable, Sendable, Equatable {
        /// The highest ballot promised.
        public var promised: Ballot?
        /// The proposal accepted.
        public var accepted: AcceptedProposal?

        /// Votes (none by default).
        public init(promised: Ballot? = nil, accepted: AcceptedProposal? = nil) {
            self.promised = promised
            self.accepted = accepted
        }
    }

    /// A witness that knows only `votes` for `epoch`.
    public init(epoch: UInt64, votes: EpochVotes) {
        promised[epoch] = votes.promised
        accepted[epoch] = votes.accepted
    }

    /// Its votes for `epoch`.
    public func votes(epoch: UInt64) -> EpochVotes { EpochVotes(promised: promised[epoch], accepted: accepted[epoch]) }

    /// Answers a prepare or an accept (other messages get no answer).
    public mutating func handle(_ message: MembershipMessage, from sender: MemberAddress) -> [MembershipAction] {
        if let epoch = message.epoch, epoch < floor { return [] }
        switch message {
        case let .prepare(epoch, ballot):
            let highest = promised[epoch] ?? .none
            guard ballot >= highest else { return [.send(.reject(epoch: epoch, ballot: ballot, promised: highest), to: sender)] }
            promised[epoch] = ballot
            prune(below: epoch)
            let vote = MembershipMessage.promise(
                epoch: epoch, ballot: ballot, sender: MembershipCore.witnessID, holding: Holding(step: -1, intact: false), accepted: accepted[epoch])
            return [.send(vote, to: sender)]
        case let .accept(epoch, ballot, decision):
            let highest = promised[epoch] ?? .none
            guard ballot >= highest else { return [.send(.reject(epoch: epoch, ballot: ballot, promised: highest), to: sender)] }
            promised[epoch] = ballot
            accepted[epoch] = AcceptedProposal(ballot: ballot, decision: decision)
            prune(below: epoch)
            return [.send(.accepted(epoch: epoch, ballot: ballot, sender: MembershipCore.witnessID), to: sender)]
        default:
            return []
        }
    }

    /// The proposal accepted for the change out of `epoch`, if any.
    public func acceptedProposal(epoch: UInt64) -> AcceptedProposal? { accepted[epoch] }

    private mutating func prune(below epoch: UInt64) {
        guard epoch > Self.keptEpochs, epoch - Self.keptEpochs > floor else { return }
        floor = epoch - Self.keptEpochs
        promised = promised.filter { $0.key >= floor }
        accepted = accepted.filter { $0.key >= floor }
    }
}
