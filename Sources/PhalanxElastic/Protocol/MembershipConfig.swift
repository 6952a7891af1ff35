import PhalanxTCP

/// The rules and timings of `MembershipCore`.
public struct MembershipConfig: Hashable, Sendable {
    /// How many votes make a quorum.
    public enum QuorumRule: Hashable, Sendable {
        /// A strict majority of the previous membership, or exactly half plus the witness (the
        /// only safe rule; the default).
        case majorityOrWitness
        /// Half of the members suffice, without a witness. Unsafe: an even partition yields two
        /// jobs. It exists to prove that the simulator finds that (a mutation check).
        case unsafeHalf
    }

    /// Where this process listens (its identity until it is admitted).
    public var address: MemberAddress
    /// The tie-breaking witness (the launcher's rendezvous or an external store), if any.
    public var witness: MemberAddress?
    /// The quorum rule.
    public var quorum: QuorumRule = .majorityOrWitness
    /// The job's last step: a member holding it is finished.
    public var lastStep: Int
    /// Fewer members than this stop the job.
    public var minimumMembers = 1
    /// Joiners beyond this are refused.
    public var maximumMembers = 64
    /// How long a coordinator gathers promises (and acceptances) before deciding with what it has.
    public var agreementTimeout: Duration = .seconds(2)
    /// In a round that follows a failure, once a quorum has promised, how much longer a
    /// coordinator waits for the members it does not suspect (a hung one is left out, and
    /// rejoins when it wakes).
    public var quorumGrace: Duration = .milliseconds(500)
    /// How long a follower waits for the coordinator before suspecting it.
    public var coordinatorTimeout: Duration = .seconds(3)
    /// The first wait between join requests (doubled each time up to `agreementTimeout`).
    public var joinRetry: Duration = .milliseconds(200)
    /// Seeds the jitter that keeps competing coordinators and joiners apart.
    public var seed: UInt64 = 0

    /// Makes a configuration.
    public init(address: MemberAddress, witness: MemberAddress? = nil, lastStep: Int, seed: UInt64 = 0) {
        self.address = address
        self.witness = witness
        self.lastStep = lastStep
        self.seed = seed
    }
}
