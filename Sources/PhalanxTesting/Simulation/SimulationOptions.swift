/// One schedule of the deterministic simulation: the job, the faults, and what is checked.
/// Everything random in a run is drawn from `seed`, so a seed replays exactly.
public struct SimulationOptions: Sendable, Hashable {
    /// A kind of fault the nemesis injects.
    public enum Fault: String, Sendable, Hashable, CaseIterable, Codable {
        /// SIGKILL one process (its sockets close); the launcher may start a replacement.
        case crash
        /// SIGKILL two processes at the same instant.
        case doubleCrash
        /// SIGSTOP one process for 0.3–4 s (several may be frozen at once).
        case freeze
        /// Cut the processes (and the witness) into two groups that cannot reach each other.
        case partition
        /// One process stops hearing another (one direction only).
        case oneWayPartition
        /// Control messages are dropped with probability 0.3 for a while.
        case loss
        /// A new process asks to join.
        case join
    }

    /// A deliberately broken rule, to prove that the checker finds what it must.
    public enum Mutation: String, Sendable, Hashable, CaseIterable, Codable {
        /// Half of the members decide without the witness (expected: a split brain).
        case noQuorum
        /// A failed state transfer marks every receiver damaged, even one that still holds its
        /// committed state (expected: a committed state lost while holders survive).
        case syncDamagesReceivers
    }

    /// Fixes every random choice of the run.
    public var seed: UInt64
    /// Members at the start.
    public var members: Int
    /// The job's last step.
    public var lastStep: Int
    /// Faults are injected during this much simulated time from the start.
    public var faultWindow: Duration
    /// The mean simulated time between two faults.
    public var meanFaultInterval: Duration
    /// The fault kinds drawn from.
    public var faults: [Fault]
    /// After the faults stop, the job must finish within this simulated time (when a quorum of
    /// its membership is alive).
    public var settleLimit: Duration
    /// Whether the launcher's witness breaks ties of even memberships.
    public var witness: Bool
    /// Whether a failed state transfer can leave receivers' buffers partly overwritten (the
    /// in-place commit policy) instead of restoring their snapshot.
    public var inPlace: Bool
    /// The probability that a crashed process is replaced by a newcomer.
    public var restartProbability: Double
    /// Whether the nemesis spares the process whose death would leave the newest membership
    /// without a quorum (so that finishing is required); otherwise it kills at random.
    public var preserveQuorum: Bool
    /// A deliberately broken rule, if any.
    public var mutation: Mutation?
    /// Stops a run that goes on too long (a livelock shows as a liveness violation).
    public var maximumEvents: Int
    /// Keeps a readable trace of every event (for replaying a failing seed).
    public var trace: Bool

    /// A schedule drawn from `seed`: 3–7 members, every fault kind, 4–12 s of faults about
    /// every 0.3–1.5 s (overlapping), the in-place or snapshot policy.
    public init(seed: UInt64) {
        var random = SimulationRandom(seed: seed ^ 0x5EED_0F_5C4E_D01E)
        self.seed = seed
        self.members = 3 + Int(random.below(5))
        self.lastStep = 40 + Int(random.below(40))
        self.faultWindow = .milliseconds(4000 + Int(random.below(8000)))
        self.meanFaultInterval = .milliseconds(300 + Int(random.below(1200)))
        self.faults = Fault.allCases
        self.settleLimit = .seconds(120)
        self.witness = random.below(4) != 0
        self.inPlace = random.below(2) == 0
        self.restartProbability = 0.6
        self.preserveQuorum = random.below(4) != 0
        self.mutation = nil
        self.maximumEvents = 400_000
        self.trace = false
    }
}
