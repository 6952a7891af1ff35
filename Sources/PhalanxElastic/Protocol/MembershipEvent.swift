import PhalanxTCP

/// What happens to a member, as its driver (the real process, or the simulator) reports it to
/// `MembershipCore`.
public enum MembershipEvent: Hashable, Sendable {
    /// A message arrived from the process listening at `from`.
    case received(MembershipMessage, from: MemberAddress)
    /// A timer armed by `.armTimer` fired.
    case timerFired(MembershipTimer)
    /// The failure detector (a closed connection, missing heartbeats) suspects member `id`.
    case suspected(id: Int, reason: String)
    /// The step in flight failed (a collective error); `suspects` names the members the
    /// transport blames, if any.
    case stepFailed(suspects: [Int], reason: String)
    /// The step was committed: the state now holds `step` steps.
    case stepCommitted(step: Int)
    /// The state transfer ordered by `.synchronize` finished: this member holds the source's state.
    case transferFinished(holding: Holding)
    /// The state transfer failed; `holding` is what this member's buffers hold now (its own
    /// commit when nothing of the source's state was written into them).
    case transferFailed(holding: Holding, suspects: [Int], reason: String)
    /// The answer to `.stopTraining`: the step or transfer in flight is over (discarded, or
    /// committed just before the stop) and `holding` is what the state holds now.
    case trainingStopped(holding: Holding)
}

/// A timer of the core; `generation` tells a timer that was armed again since from the newest.
public struct MembershipTimer: Hashable, Sendable {
    /// What a timer is for.
    public enum Kind: Hashable, Sendable {
        /// A follower waits for a coordinator's prepare (or its decision).
        case awaitCoordinator
        /// A coordinator's phase (promises or acceptances) ends.
        case roundDeadline
        /// A coordinator whose round failed tries again.
        case retryRound
        /// A newcomer asks again to be admitted.
        case retryJoin
    }

    /// The purpose.
    public var kind: Kind
    /// Incremented each time a timer of this kind is armed.
    public var generation: Int

    /// Makes a timer.
    public init(kind: Kind, generation: Int) {
        self.kind = kind
        self.generation = generation
    }
}

/// What `MembershipCore` asks its driver to do.
public enum MembershipAction: Hashable, Sendable {
    /// Send a message to the process at an address.
    case send(MembershipMessage, to: MemberAddress)
    /// Fire `timer` after `delay` (simulated or real time).
    case armTimer(MembershipTimer, after: Duration)
    /// Stop the step or transfer in flight and answer `.trainingStopped` once the state is
    /// idle (the step is discarded unless it committed before the stop took effect).
    case stopTraining(reason: String)
    /// Build the ring of this membership (reusing the connections whose neighbours stay).
    case installRing(Membership)
    /// Run the state transfer from `source` over the new ring; then report
    /// `transferFinished` or `transferFailed`.
    case synchronize(source: Int, step: Int)
    /// Restore the state as committed at `step` (this member holds it intact).
    case restore(step: Int)
    /// Train from `step` on, reporting `stepCommitted` after each step.
    case train(from: Int)
    /// The job finished: this member holds the final step.
    case finished(step: Int)
    /// Tell joiners where the job is: the live membership (the peers file, the launcher's
    /// rendezvous). A directory of an older epoch than the one published must not replace it.
    case publishDirectory(Membership)
    /// This member was left out of a new membership; it asks to be admitted again.
    case evicted(reason: String)
    /// The job stops here (below the minimum, or no intact state is left).
    case stop(reason: String)
    /// A round of this coordinator ended without a quorum: only the members in `reached` (of
    /// `members`) answered. Training stays stopped; the coordinator tries again later. A
    /// driver says so, so that a minority cut off from the others tells why it waits.
    case noQuorum(epoch: UInt64, reached: [Int], members: Int)
}
