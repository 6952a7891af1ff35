import Foundation
import Logging
import PhalanxTCP

/// Hosts a `NodeRendezvous` for `phalanx-run --nnodes` (on the job's endpoint with the
/// `builtin` backend; on a free port of the elected agent with `etcd`), over the job's
/// authenticated control connections: node agents poll it
/// with an `AgentReport` (JSON) and get an `AgentAssignment` back. For each incarnation it
/// forms it also hosts the workers' rendezvous (ranks and addresses) and the membership witness.
///
/// While it is down (its node died), running workers go on training and replacing failed
/// workers on nodes that still have members works; what stops is forming the job, adding new
/// nodes, starting again from the checkpoints after every member was lost, and the witness
/// (an even membership cannot lose half of its members).
public final class NodeRendezvousServer: @unchecked Sendable {
    /// The id it answers handshakes with (the 32-bit wire form of -2, the witness' id).
    static let memberID = Int(UInt32.max) - 1
    /// Where agents reach it.
    public let address: MemberAddress
    private let node: MemberNode
    private let host: String
    private let credentials: JobCredentials
    private let logger: Logger
    // Guarded by `lock`.
    private let lock = NSLock()
    private var state: NodeRendezvous
    private var incarnations: [Int: (rendezvous: RendezvousServer, witness: WitnessServer?)] = [:]
    private var kept: NodeRendezvous.Snapshot?
    private var stopped = false
    private let hostsWitness: Bool
    private let keep: (@Sendable (NodeRendezvous.Snapshot) -> Bool)?
    private let fence: (@Sendable () -> Bool)?

    /// Listens on `host:port` (0: a free port) for the agents of a job of `minNodes ... maxNodes`
    /// nodes. With `hostsWitness` it also serves each incarnation's membership witness (the
    /// `etcd` backend does not: every agent serves one whose votes live in etcd). `keep`, when
    /// given, stores each new state before any agent hears of it; when it fails (another
    /// rendezvous took over), this one stops answering. `fence`, when given, is asked before
    /// every answer whether this host may still answer (its lease surely runs); when not, it stops.
    /// - Throws: `SocketError` when the endpoint cannot be bound.
    public init(host: String, port: UInt16, credentials: JobCredentials, rendezvous: NodeRendezvous, hostsWitness: Bool = true,
                keep: (@Sendable (NodeRendezvous.Snapshot) -> Bool)? = nil, fence: (@Sendable () -> Bool)? = nil,
                logger: Logger = Logger(label: "phalanx.node-rendezvous")) throws {
        node = try MemberNode(host: host, port: port, credentials: credentials, logger: logger)
        node.memberID = Self.memberID
        address = node.address(id: Self.memberID)
        self.host = host
        self.credentials = credentials
        self.state = rendezvous
        self.hostsWitness = hostsWitness
        self.keep = keep
        self.fence = fence
        kept = keep == nil ? nil : rendezvous.snapshot
        self.logger = logger
    }

    deinit { stop() }

    /// Starts answering agents.
    public func start() {
        node.start { [weak self] request in
            guard let self else { return request.close() }
            guard let report = try? JSONDecoder().decode(AgentReport.self, from: Data(request.payload)) else {
                self.logger.warning("node rendezvous: an unreadable report from \(request.endpoint)")
                return request.close()
            }
            guard let answer = self.handle(report) else { return request.close() }
            request.reply((try? Array(JSONEncoder().encode(answer))) ?? [])
        }
    }

    /// How many agents other than `node` hold a current lease.
    public func liveNodes(excluding node: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return state.liveNodes(now: .now).filter { $0 != node }.count
    }

    /// Ends the lease of every agent not in `registered` (read at `listed`) and not heard from
    /// since (their registrations in etcd expired).
    public func retain(registered: Set<String>, listed: ContinuousClock.Instant) {
        lock.lock()
        state.retain(registered: registered, listed: listed)
        lock.unlock()
    }

    /// Continues from `snapshot` (read from the store after this server won the right to host;
    /// before `start`).
    public func restore(_ snapshot: NodeRendezvous.Snapshot) {
        lock.lock()
        state.restore(snapshot)
        if keep != nil { kept = state.snapshot }
        lock.unlock()
    }

    /// Whether it still answers (`stop` was not called, and `keep` never failed).
    public var isServing: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !stopped
    }

    /// Stops answering (the incarnations' worker rendezvous and witnesses too).
    public func stop() {
        node.close()
        lock.lock()
        stopped = true
        let witnesses = incarnations.values.compactMap(\.witness)
        lock.unlock()
        for witness in witnesses { witness.stop() }
    }

    /// The answer to `report`, or nil once this rendezvous no longer answers.
    func handle(_ report: AgentReport) -> AgentAssignment? {
        lock.lock()
        guard !stopped else {
            lock.unlock()
            return nil
        }
        if let fence, !fence() {
            lock.unlock()
            logger.warning("node rendezvous: this host's lease may have run out; stepping down")
            stop()
            return nil
        }
        var (answer, formed) = state.handle(report, now: .now)
        if let keep, case let snapshot = state.snapshot, snapshot != kept {
            guard keep(snapshot) else {
                lock.unlock()
                logger.warning("node rendezvous: could not store its state (another rendezvous took over, or the store is unreachable); stepping down")
                stop()
                return nil
            }
            kept = snapshot
        }
        defer { lock.unlock() }
        if let formed {
            do {
                let workers = credentials.forWorkers(incarnation: formed.generation)
                let rendezvous = try RendezvousServer(host: host, port: 0, worldSize: formed.worldSize, credentials: workers,
                                                      timeout: .seconds(300), logger: logger)
                rendezvous.start()
                let witness = hostsWitness ? try WitnessServer(host: host, credentials: workers, logger: logger) : nil
                witness?.start()
                incarnations[formed.generation] = (rendezvous, witness)
                logger.info("node rendezvous: incarnation \(formed.generation) formed with \(formed.worldSize) workers")
            } catch {
                logger.error("node rendezvous: could not serve incarnation \(formed.generation): \(error)")
            }
        }
        if let incarnation = incarnations[answer.generation] {
            answer.rendezvousHost = host
            answer.rendezvousPort = incarnation.rendezvous.port
            answer.witness = incarnation.witness?.environmentValue
        } else if answer.role == .start {
            answer.role = .wait
            answer.reason = "the worker rendezvous of incarnation \(answer.generation) could not be served"
        }
        return answer
    }
}
