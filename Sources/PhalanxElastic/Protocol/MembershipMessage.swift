import PhalanxTCP

/// The messages members (and the witness) exchange to agree on memberships and admit joiners.
///
/// Every message names the epoch it is about; a member that receives a message of another
/// epoch helps the sender catch up (or learns that it is behind) instead of acting on it.
public enum MembershipMessage: Hashable, Codable, Sendable {
    /// "Epoch `epoch` failed here; I suspect these members": stops the others' step at once.
    case alert(epoch: UInt64, sender: Int, suspects: [Int])
    /// Phase 1 of the agreement out of `epoch`: "promise to ignore ballots below `ballot`".
    case prepare(epoch: UInt64, ballot: Ballot)
    /// The answer to a prepare: what the sender holds, and the proposal it accepted, if any.
    case promise(epoch: UInt64, ballot: Ballot, sender: Int, holding: Holding, accepted: AcceptedProposal?)
    /// "I promised a higher ballot": the coordinator steps back.
    case reject(epoch: UInt64, ballot: Ballot, promised: Ballot)
    /// Phase 2: "accept this decision under `ballot`".
    case accept(epoch: UInt64, ballot: Ballot, decision: MembershipDecision)
    /// "I accepted it".
    case accepted(epoch: UInt64, ballot: Ballot, sender: Int)
    /// The decisions that made the epochs after the receiver's, oldest first: it installs
    /// those that include it, and learns it was left out otherwise.
    case decided([MembershipDecision])
    /// "I am at `epoch`; send me the decisions after it" (a member that fell behind).
    case behind(epoch: UInt64)
    /// A newcomer (or an evicted member starting over) asks to be admitted.
    case join(address: MemberAddress)
    /// "Ask these members instead" (the leader first), with the live membership's directory.
    case redirect(to: [MemberAddress])
    /// The job cannot admit anyone (it stopped, or it is full); `retry` says whether to ask again.
    case refuse(reason: String, retry: Bool)
    /// "The job finished at `step`": nothing to join.
    case finished(step: Int)
}

/// A proposal an acceptor accepted, carried in its promises so that a new coordinator
/// re-proposes it (it may already have been chosen).
public struct AcceptedProposal: Hashable, Codable, Sendable {
    /// The ballot it was accepted under.
    public var ballot: Ballot
    /// The proposal.
    public var decision: MembershipDecision

    /// Makes one.
    public init(ballot: Ballot, decision: MembershipDecision) {
        self.ballot = ballot
        self.decision = decision
    }
}

extension MembershipMessage {
    /// The epoch a message is about (nil for messages that are not tied to one).
    public var epoch: UInt64? {
        switch self {
        case let .alert(epoch, _, _), let .prepare(epoch, _), let .promise(epoch, _, _, _, _), let .reject(epoch, _, _),
             let .accept(epoch, _, _), let .accepted(epoch, _, _), let .behind(epoch):
            return epoch
        case .decided, .join, .redirect, .refuse, .finished:
            return nil
        }
    }

    /// A short name for traces ("prepare", "promise", …).
    public var kind: String {
        switch self {
        case .alert: "alert"
        case .prepare: "prepare"
        case .promise: "promise"
        case .reject: "reject"
        case .accept: "accept"
        case .accepted: "accepted"
        case .decided: "decided"
        case .behind: "behind"
        case .join: "join"
        case .redirect: "redirect"
        case .refuse: "refuse"
        case .finished: "finished"
        }
    }
}
