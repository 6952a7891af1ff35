/// What a node agent tells the job's rendezvous on every poll: who it is, what its workers
/// know, and whether they lost the job.
public struct AgentReport: Codable, Sendable, Equatable {
    /// The agent's id, unique for the agent's lifetime (host, pid and a random part).
    public var node: String
    /// The host its workers advertise (for logs).
    public var host: String
    /// Workers it runs.
    public var slots: Int
    /// The incarnation its workers belong to (-1: none started yet).
    public var generation: Int
    /// The newest membership its workers wrote to its peers file: epoch and "host:port" lines.
    public var epoch: UInt64?
    /// The members of `epoch`.
    public var members: [String]
    /// The step the job finished at, once one of its workers finished.
    public var finishedStep: Int?
    /// One of its workers of `generation` found no live member of the job (the rendezvous
    /// starts again from the checkpoints once no node runs a worker of `generation`).
    public var lost: Bool
    /// Its workers of `generation` running now.
    public var running: Int

    /// A report.
    public init(node: String, host: String, slots: Int, generation: Int = -1, epoch: UInt64? = nil, members: [String] = [],
                finishedStep: Int? = nil, lost: Bool = false, running: Int = 0) {
        self.node = node
        self.host = host
        self.slots = slots
        self.generation = generation
        self.epoch = epoch
        self.members = members
        self.finishedStep = finishedStep
        self.lost = lost
        self.running = running
    }
}

/// What the rendezvous answers a node agent.
public struct AgentAssignment: Codable, Sendable, Equatable {
    /// What the agent should do.
    public enum Role: String, Codable, Sendable {
        /// Nothing yet (too few nodes, a spare beyond the maximum, no member directory yet).
        case wait
        /// Start its workers as ranks `rankBase ..< rankBase + slots` of `worldSize` of `generation`.
        case start
        /// Start its workers as joiners of the running job (members at `members`); also the
        /// answer to an agent that reported the job lost while other nodes still run workers
        /// of it (its directory was stale: try again).
        case join
        /// The job finished: start nothing, let replacements exit.
        case finished
    }

    /// What to do.
    public var role: Role
    /// The incarnation (a new one after the job lost every member and restarts from its checkpoints).
    public var generation: Int
    /// The first rank of the agent's workers (role `start`).
    public var rankBase = 0
    /// Workers of the incarnation (role `start`).
    public var worldSize = 0
    /// Where the incarnation's workers register (role `start`): host and port of the worker rendezvous.
    public var rendezvousHost = ""
    /// The port of the worker rendezvous.
    public var rendezvousPort: UInt16 = 0
    /// The membership witness ("host:port"), if any.
    public var witness: String?
    /// The newest membership known: its epoch and members (role `join`, and for the agent's peers file).
    public var epoch: UInt64?
    /// The members of `epoch`.
    public var members: [String] = []
    /// The step the job finished at.
    public var finishedStep: Int?
    /// The agent reported the job lost, but other nodes still run it: start joiners again.
    public var rejoin = false
    /// Why, in words (for the agent's log).
    public var reason: String

    /// An assignment.
    public init(role: Role, generation: Int, reason: String) {
        self.role = role
        self.generation = generation
        self.reason = reason
    }
}
