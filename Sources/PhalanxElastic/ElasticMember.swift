import Foundation
import Logging
import PhalanxCheckpoint
import PhalanxCollectives
import PhalanxTCP

/// This process's place in an elastic job: its listener, its heartbeats, the current membership
/// and ring, and the protocol that changes them when members fail or join.
///
/// ```swift
/// let member = try ElasticMember.start()                 // PHALANX_*/torchrun/mpirun/Slurm variables
/// let state = ElasticState(model: model, optimizer: optimizer)
/// try member.run(state: state, until: total) { step in
///     let slice = try sampler.indices(step: step.index, position: step.rank, members: step.worldSize)
///     … forward, backward into model.store.gradients …
///     try step.communicator.allReduce(model.store.gradients)
///     try optimizer.step(model.store)
/// }
/// ```
///
/// Failures are found by connection errors, collective deadlines and neighbour heartbeats; the
/// survivors agree on the new members through the lowest-id member they can reach (any member
/// may die, that one included), rebuild only the changed ring connections, take the newest
/// committed state and redo the interrupted step. See docs/elastic.md.
public final class ElasticMember: @unchecked Sendable {
    /// The options in force.
    public let options: ElasticOptions
    let node: MemberNode
    let heartbeat: HeartbeatService
    let interruption = Interruption()
    let logger: Logger
    let lock = NSCondition()

    // Shared with the listener and heartbeat threads (under `lock`).
    var sharedMembership: Membership
    var lastDecision: Decision?
    var recovering = false
    var stopping = false
    var pending: [(ControlRequest, ControlMessage)] = []
    var suspected: Set<Int> = []

    // The training thread's own.
    /// This member's id (launch rank for initial members; assigned at admission for joiners).
    public internal(set) var id: Int
    var transport: TCPTransport?
    var ring: RingCommunicator
    var pendingSyncSource: Int?
    var checkpointWriter: AsyncCheckpointWriter?
    var changes: [MembershipChange] = []

    /// Called on the training thread after each change of members, once the state is restored
    /// (e.g. to rescale the learning rate, or to log `change.summary`).
    public var onMembershipChange: ((MembershipChange) -> Void)?
    /// Called on the training thread with each step's outcome.
    public var onStepOutcome: ((StepOutcome) -> Void)?
    /// Called on the training thread after this member handed a durable checkpoint of `step` to
    /// the background writer, with when that began and ended (for timelines).
    public var onCheckpoint: ((_ step: Int, _ start: Date, _ end: Date) -> Void)?

    init(options: ElasticOptions, node: MemberNode, heartbeat: HeartbeatService, membership: Membership, id: Int, logger: Logger) {
        self.options = options
        self.node = node
        self.heartbeat = heartbeat
        self.sharedMembership = membership
        self.id = id
        self.logger = logger
        self.ring = RingCommunicator(transport: LoneTransport(), epoch: membership.epoch)
    }

    deinit { shutdown() }

    /// The current membership.
    public var membership: Membership {
        lock.lock()
        defer { lock.unlock() }
        return sharedMembership
    }

    /// This member's ring position now (read it on the training thread, like `id`).
    public var rank: Int { ring.rank }
    /// The number of members now (training thread).
    public var worldSize: Int { ring.worldSize }
    /// The address joiners and members reach this member at (training thread).
    public var address: MemberAddress { node.address(id: id) }
    /// Connections refused by this member's listener (strangers, wrong secrets).
    public var refusedConnections: Int { node.refusedConnections }

    /// Asks `run` to return at the next step boundary (callable from any thread, e.g. a signal
    /// handler); a step failing meanwhile is not recovered. `ElasticRunSummary.stopped` tells.
    public func requestStop() {
        lock.lock()
        stopping = true
        lock.unlock()
    }

    /// Whether `requestStop` was called.
    public var stopRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    /// Stops heartbeats, closes the listener and the ring (the others see this member leave).
    /// Call it on the training thread (after `run` returned, or from the step closure), never
    /// while another thread is inside `run`.
    public func shutdown() {
        dismissPending("member \(id) is leaving the job")
        heartbeat.stop()
        node.close()
        transport?.close()
    }

    var collectiveOptions: CollectiveOptions { CollectiveOptions(timeout: options.failureTimeout) }

    // MARK: Starting

    /// Joins the job described by the environment: as an initial member (rank, world size and
    /// rendezvous from PHALANX_*/torchrun/OMPI/Slurm variables; rank 0 hosts the rendezvous
    /// unless `PHALANX_RENDEZVOUS_EXTERNAL=1`), or as a joiner when `PHALANX_JOIN` names member
    /// addresses ("host:port,…"), or is "1" and `PHALANX_PEERS_FILE` lists them (members append
    /// their address to that file when it is set).
    /// - Throws: `SocketError`, `HandshakeError`, `CollectiveError`, `ElasticError`.
    public static func start(
        options: ElasticOptions = ElasticOptions(), variables: [String: String] = LaunchEnvironment.processEnvironment(),
        logger: Logger = Logger(label: "phalanx.elastic")
    ) throws -> ElasticMember {
        try options.validate()
        let credentials = try JobCredentials.fromEnvironment(variables, logger: logger)
        let peersFile = variables["PHALANX_PEERS_FILE"]
        if let join = variables["PHALANX_JOIN"] {
            // "host:port,…", or "1" to read the members' addresses from the peers file.
            let addresses = join == "1" ? peersFile.map(PeersFile.read) ?? [] : join.split(separator: ",").map(String.init)
            return try ElasticMember.join(
                addresses: addresses,
                host: variables["PHALANX_HOST"] ?? addresses.first.flatMap { $0.split(separator: ":").first }.flatMap { MemberNode.localAddress(toward: String($0)) } ?? "127.0.0.1",
                credentials: credentials, options: options, logger: logger)
        }
        let environment = try LaunchEnvironment.detect(from: variables)
        // The address others reach this member at: PHALANX_HOST, else the local end of the
        // route to the rendezvous (right on one machine and across hosts alike).
        let host = variables["PHALANX_HOST"] ?? MemberNode.localAddress(toward: environment.masterAddress) ?? environment.masterAddress
        let node = try MemberNode(host: host, credentials: credentials, logger: logger)
        let heartbeat = try HeartbeatService(host: host, port: node.port, credentials: credentials,
                                             interval: options.heartbeatInterval, timeout: options.heartbeatTimeout, logger: logger)
        node.memberID = environment.rank
        let server = try RendezvousServer.hostedByThisRank(
            environment, variables: variables, credentials: credentials, timeout: options.startTimeout, logger: logger)
        let initial = Membership(epoch: 1, members: [node.address(id: environment.rank)], nextID: environment.worldSize)
        let member = ElasticMember(options: options, node: node, heartbeat: heartbeat, membership: initial, id: environment.rank, logger: logger)
        member.listen()
        var members = [node.address(id: 0)]
        if environment.worldSize > 1 {
            members = try node.register(
                rank: environment.rank, worldSize: environment.worldSize,
                server: PeerTable.Endpoint(host: environment.masterAddress, port: environment.masterPort), timeout: options.startTimeout)
        }
        if let server, case let .failure(error) = server.wait() { throw error }
        if let peersFile { PeersFile.append(node.address(id: environment.rank), to: peersFile) }
        let membership = Membership(epoch: 1, members: members, nextID: environment.worldSize)
        member.lock.lock()
        member.sharedMembership = membership
        member.lock.unlock()
        try member.connect(membership, previous: nil, previousMembers: [])
        member.pendingSyncSource = 0
        return member
    }

    /// Starts the listener and heartbeat threads.
    func listen() {
        node.start { [weak self] request in self?.handle(request) }
        heartbeat.onSuspect = { [weak self] peer, silence in self?.suspect(peer, "no heartbeat for \(silence)") }
        heartbeat.onAlert = { [weak self] sender in self?.interruption.trigger("member \(sender) reported a failure") }
        heartbeat.start()
    }

    /// Builds the ring of `membership` and points heartbeats at the new neighbours.
    @discardableResult
    func connect(_ membership: Membership, previous: TCPTransport?, previousMembers: [MemberAddress]) throws -> MemberNode.RingRebuild {
        let (transport, rebuild) = try node.buildRing(
            members: membership.members, id: id, epoch: membership.epoch, previous: previous, previousMembers: previousMembers,
            timeout: options.rebuildTimeout, interruption: interruption,
            abortHandler: { [weak self] error in self?.alertAll(error) })
        self.transport = transport
        ring = RingCommunicator(transport: transport, epoch: membership.epoch)
        watchNeighbours(in: membership)
        return rebuild
    }

    /// Points heartbeats at this member's ring neighbours in `membership` (none when alone);
    /// their silence counts from now.
    func watchNeighbours(in membership: Membership) {
        heartbeat.watch(id: id, epoch: membership.epoch, peers: membership.neighbours(of: id))
    }

    /// A collective failed here: tell every member of the epoch at once (UDP alert).
    func alertAll(_ error: CollectiveError) {
        let current = membership
        heartbeat.alert(id: id, epoch: current.epoch, to: current.members.filter { $0.id != id })
    }

    /// A neighbour fell silent: suspect it and stop the running step.
    func suspect(_ peer: Int, _ reason: String) {
        lock.lock()
        suspected.insert(peer)
        let position = sharedMembership.position(of: peer)
        lock.unlock()
        interruption.trigger("member \(peer): \(reason)", peer: position)
    }
}

/// The transport of a member alone (and the placeholder before the first ring).
final class LoneTransport: Transport {
    let rank = 0
    let worldSize = 1
    func exchange(
        send header: MessageHeader?, _ outgoing: UnsafeRawBufferPointer, receive expected: MessageHeader?,
        into incoming: UnsafeMutableRawBufferPointer, timeout: Duration, progress: (Int) throws -> Void
    ) throws {}
    func abort(_ error: CollectiveError) {}
}

/// The optional file where members write their addresses for joiners ("host:port" lines).
enum PeersFile {
    static func append(_ address: MemberAddress, to path: String) {
        let line = "\(address.host):\(address.port)\n"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    static func read(_ path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init).reversed()
    }
}
