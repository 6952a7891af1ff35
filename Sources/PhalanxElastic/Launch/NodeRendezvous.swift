/// The node-level rendezvous of a multi-node job (the `builtin` backend of `phalanx-run
/// --nnodes`): which agents are alive (a lease renewed by every poll), which incarnation of the
/// job runs and which agents started it, the newest member directory the agents have seen, and
/// whether the job finished. Pure state: the server that hosts it passes the time in and adds
/// the addresses of the worker rendezvous and witness of each incarnation it forms.
///
/// An incarnation forms once `minNodes` agents are alive and either `maxNodes` are or
/// `lastCall` passed since the minimum was reached. Agents that arrive later join the running
/// job (up to `maxNodes` live agents). When an agent reports that its workers found no live
/// member, the next incarnation forms with the live agents, and its first member resumes from
/// the newest checkpoint.
public struct NodeRendezvous: Sendable {
    /// Fewest agents to form an incarnation with.
    public let minNodes: Int
    /// Most agents taking part at once (more wait as spares).
    public let maxNodes: Int
    /// How long to wait for more agents once `minNodes` are there.
    public var lastCall: Duration = .seconds(2)
    /// An agent silent this long is gone.
    public var lease: Duration = .seconds(5)
    /// An agent that reported the job lost while other nodes still run workers of it is told
    /// to join again after this long (its workers' directory was stale).
    public var rejoinAfter: Duration = .seconds(5)
    /// Nothing forms until this long after the first report: a rendezvous started again (its
    /// host died, another agent took over the endpoint) first hears from the agents of the
    /// running job and adopts it instead of starting a second job. Longer than an agent's poll
    /// interval (250 ms) plus its poll timeout (1 s), with margin.
    public var quietStart: Duration = .seconds(3)

    private struct Agent {
        var report: AgentReport
        var lastSeen: ContinuousClock.Instant
        let arrival: Int
    }

    private var agents: [String: Agent] = [:]
    private var arrivals = 0
    /// The running incarnation (-1 before the first forms).
    public private(set) var generation = -1
    // Each agent taking part in the running incarnation: its first rank if it started the
    // incarnation, -1 if it joined it.
    private var participants: [String: Int] = [:]
    private var worldSize = 0
    private var minimumSince: ContinuousClock.Instant?
    private var firstReport: ContinuousClock.Instant?
    // The newest incarnation that lost every member.
    private var lostGeneration = -1
    // Since when each agent reports the running incarnation lost (unconfirmed).
    private var lostSince: [String: ContinuousClock.Instant] = [:]
    private var directory: (epoch: UInt64, members: [String])?
    private var finishedStep: Int?

    /// A rendezvous for `minNodes ... maxNodes` agents.
    public init(minNodes: Int, maxNodes: Int) {
        self.minNodes = max(1, minNodes)
        self.maxNodes = max(self.minNodes, maxNodes)
    }

    /// What outlives the process hosting the rendezvous (the `etcd` backend keeps it there): the
    /// running incarnation, the newest that lost every member, the member directory and the
    /// step the job finished at. Who takes part is learnt again from the agents' reports.
    public struct Snapshot: Codable, Sendable, Equatable {
        /// The running incarnation (-1 before the first formed).
        public var generation: Int
        /// The newest incarnation that lost every member.
        public var lostGeneration: Int
        /// The newest membership's epoch.
        public var epoch: UInt64?
        /// Its members ("host:port").
        public var members: [String]
        /// The step the job finished at.
        public var finishedStep: Int?
    }

    /// The state to keep.
    public var snapshot: Snapshot {
        Snapshot(generation: generation, lostGeneration: lostGeneration, epoch: directory?.epoch, members: directory?.members ?? [],
                 finishedStep: finishedStep)
    }

    /// Continues from `snapshot` (a rendezvous started again after its host went): it adopts
    /// the running incarnation from the agents' reports, as when it learns it from them alone.
    public mutating func restore(_ snapshot: Snapshot) {
        generation = max(generation, snapshot.generation)
        lostGeneration = max(lostGeneration, snapshot.lostGeneration)
        if let epoch = snapshot.epoch, !snapshot.members.isEmpty, snapshot.generation == generation, epoch > directory?.epoch ?? 0 {
            directory = (epoch, snapshot.members)
        }
        if let step = snapshot.finishedStep { finishedStep = max(finishedStep ?? step, step) }
    }

    /// Ends at once the lease of every agent neither in `registered` nor heard from since
    /// `listed` (when the registrations were read): the `etcd` backend, where an agent's
    /// registration goes with its etcd lease.
    public mutating func retain(registered: Set<String>, listed: ContinuousClock.Instant) {
        agents = agents.filter { registered.contains($0.key) || $0.value.lastSeen >= listed }
    }

    /// An incarnation that just formed: the server starts its worker rendezvous for `worldSize`.
    public struct Formation: Sendable, Equatable {
        /// Its number.
        public let generation: Int
        /// Its workers.
        public let worldSize: Int
    }

    /// Takes `report` (renewing the agent's lease) and answers it. `formed` is set when this
    /// call formed an incarnation (the caller fills in `rendezvousPort` and `witness` of the
    /// `start` answers for it).
    public mutating func handle(_ report: AgentReport, now: ContinuousClock.Instant) -> (AgentAssignment, formed: Formation?) {
        if firstReport == nil { firstReport = now }
        if report.generation > generation {
            // An agent of a job this rendezvous never formed (it was started again): adopt the
            // job, so that nothing forms beside it, and number the next incarnation after it
            // (also when that agent says the job was lost).
            generation = report.generation
            forgetIncarnation()
            if report.lost { lostGeneration = max(lostGeneration, report.generation - 1) }
        }
        if report.generation == generation, generation > lostGeneration, participants[report.node] == nil, !report.lost {
            participants[report.node] = -1
        }
        if var agent = agents[report.node] {
            agent.report = report
            agent.lastSeen = now
            agents[report.node] = agent
        } else {
            agents[report.node] = Agent(report: report, lastSeen: now, arrival: arrivals)
            arrivals += 1
        }
        if let step = report.finishedStep { finishedStep = max(finishedStep ?? step, step) }
        if report.generation == generation, let epoch = report.epoch, !report.members.isEmpty, epoch > directory?.epoch ?? 0 {
            directory = (epoch, report.members)
        }
        var formed: Formation?
        // This agent's workers of the running incarnation found no live member.
        let reportsLoss = report.lost && report.generation == generation
        if reportsLoss {
            if lostSince[report.node] == nil { lostSince[report.node] = now }
        } else {
            lostSince[report.node] = nil
        }
        var rejoin = false
        if finishedStep == nil {
            if reportsLoss, generation >= 0, !lossConfirmed(now: now) {
                // Another node still runs workers of it: not lost, the directory was stale.
                if let since = lostSince[report.node], now - since >= rejoinAfter {
                    lostSince[report.node] = nil
                    rejoin = true
                }
            } else if reportsLoss, generation >= 0 {
                // No node runs a worker of it any more: the running incarnation is over.
                lostGeneration = generation
                lostSince = [:]
                minimumSince = nil
                forgetIncarnation()
            }
            if participants.isEmpty { formed = formIfReady(now: now) }
        }
        var answer = answer(report.node, now: now)
        if rejoin, answer.role == .start || answer.role == .join, directory != nil {
            answer.role = .join
            answer.rejoin = true
            answer.reason = "other nodes still run workers of incarnation \(generation): joining again"
        } else if !rejoin, report.lost, report.generation == generation, answer.role == .start || answer.role == .join {
            // (Compared with the generation now: a loss confirmed above formed the next one.)
            answer.role = .wait
            answer.reason = "waiting: other nodes may still run workers of incarnation \(generation)"
        }
        return (answer, formed)
    }

    /// Forgets who takes part in the running incarnation and its member directory.
    private mutating func forgetIncarnation() {
        participants = [:]
        directory = nil
    }

    /// Whether no live agent of the running incarnation runs a worker of it any more.
    private func lossConfirmed(now: ContinuousClock.Instant) -> Bool {
        agents.values.filter { now - $0.lastSeen < lease && $0.report.generation == generation }.allSatisfy { $0.report.running == 0 }
    }

    /// The agents whose lease is current.
    public func liveNodes(now: ContinuousClock.Instant) -> [String] {
        agents.values.filter { now - $0.lastSeen < lease }.sorted { $0.arrival < $1.arrival }.map(\.report.node)
    }

    private mutating func formIfReady(now: ContinuousClock.Instant) -> Formation? {
        let live = liveNodes(now: now)
        guard live.count >= minNodes else {
            minimumSince = nil
            return nil
        }
        let since = minimumSince ?? now
        minimumSince = since
        guard let firstReport, now - firstReport >= quietStart else { return nil }
        // A restart after the job lost every member forms at once: the agents are known.
        guard live.count >= maxNodes || now - since >= lastCall || generation >= 0 else { return nil }
        generation += 1
        var base = 0
        for node in live.prefix(maxNodes) {
            participants[node] = base
            base += agents[node]?.report.slots ?? 0
        }
        worldSize = base
        return Formation(generation: generation, worldSize: worldSize)
    }

    private mutating func answer(_ node: String, now: ContinuousClock.Instant) -> AgentAssignment {
        var answer = AgentAssignment(role: .wait, generation: generation, reason: "")
        answer.epoch = directory?.epoch
        answer.members = directory?.members ?? []
        if let finishedStep {
            answer.role = .finished
            answer.finishedStep = finishedStep
            answer.reason = "the job finished at step \(finishedStep)"
            return answer
        }
        if participants.isEmpty {
            let live = liveNodes(now: now).count
            answer.reason = generation < 0
                ? "\(live) of at least \(minNodes) node(s) here; waiting for more"
                : "the job lost every member; waiting for \(minNodes) node(s) to start again (\(live) here)"
            return answer
        }
        if let base = participants[node] {
            if base >= 0 {
                answer.role = .start
                answer.rankBase = base
                answer.worldSize = worldSize
                answer.reason = "ranks \(base)..<\(base + (agents[node]?.report.slots ?? 0)) of \(worldSize) in incarnation \(generation)"
            } else {
                answer.role = .join
                answer.reason = "joining the running job (incarnation \(generation))"
            }
            return answer
        }
        let taking = liveNodes(now: now).filter { participants[$0] != nil }.count
        guard taking < maxNodes else {
            answer.reason = "\(taking) node(s) take part already (the most is \(maxNodes)); waiting as a spare"
            return answer
        }
        guard directory != nil else {
            answer.reason = "no member directory yet; waiting"
            return answer
        }
        participants[node] = -1
        answer.role = .join
        answer.reason = "joining the running job (incarnation \(generation))"
        return answer
    }
}
