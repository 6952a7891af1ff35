/// A coordinator's round of the agreement out of one epoch: the promises it gathered, then the
/// acceptances of its proposal.
struct CoordinatorRound: Sendable {
    /// Where the round is.
    enum Stage: Sendable {
        case preparing
        case accepting(MembershipDecision)
    }

    /// What a promiser reported.
    struct Promise: Sendable {
        var holding: Holding
        var accepted: AcceptedProposal?
    }

    /// This round's ballot.
    var ballot: Ballot
    /// Where the round is.
    var stage: Stage = .preparing
    /// Promises by member id.
    var promises: [Int: Promise] = [:]
    /// The witness's promise (its accepted proposal inside), when it voted.
    var witnessPromise: Promise?
    /// Members that accepted the proposal.
    var accepts: Set<Int> = []
    /// Whether the witness accepted it.
    var witnessAccepted = false
    /// Whether the current stage's deadline passed (decide with the quorum at hand).
    var deadlinePassed = false
    /// Whether the quorum grace is running (the deadline was brought forward).
    var graceArmed = false

    /// Makes a round in its first stage.
    init(ballot: Ballot) {
        self.ballot = ballot
    }

    /// The proposal with the highest ballot among those the promisers accepted.
    var highestAccepted: AcceptedProposal? {
        let all = promises.values.compactMap(\.accepted) + (witnessPromise?.accepted.map { [$0] } ?? [])
        return all.max { $0.ballot < $1.ballot }
    }
}
