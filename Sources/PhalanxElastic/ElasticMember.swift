import Foundation
import Logging
import PhalanxCheckpoint
import PhalanxCollectives
import PhalanxTCP
import PhalanxTelemetry

/// This process's place in an elastic job: the driver of its `MembershipCore` (the protocol,
/// a pure state machine) over real sockets, timers and the training thread.
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
/// Threads: listener threads decode membership messages and feed them to the core; timers fire
/// on a dispatch queue and feed the core; the core runs under `lock`, one event at a time, and
/// its data-plane actions (build the ring, transfer the state, train, stop) are queued for the
/// training thread, the only one that touches the ring and the state. See docs/elastic.md.
public final class ElasticMember: @unchecked Sendable {
    /// The options in force.
    public let options: ElasticOptions
    let node: MemberNode
    let heartbeat: HeartbeatService
    let channel: MessageChannel
    let interruption = Interruption()
    let logger: Logger
    let peersFile: String?

    // Guarded by `lock`: the protocol, the data-plane instructions it issued that the training
    // thread has not taken yet, and the stop request.
    let lock = NSCondition()
    var core: MembershipCore
    var instructions: [MembershipAction] = []
    var stopping = false
    var closed = false

    // The training thread's own.
    /// This member's id (launch rank for initial members; assigned at admission for joiners).
    public internal(set) var id: Int
    var transport: TCPTransport?
    var ring: RingCommunicator
    /// The membership the ring was built for, and the one waiting to be built.
    var ringMembership: Membership?
    var pendingRing: Membership?
    var checkpointWriter: AsyncCheckpointWriter?
    var changes: [MembershipChange] = []
    var change: ChangeRecord?
    /// When the step in flight began (the detect phase of a recovery starts there).
    var stepBegan: Date?
    /// False for a newcomer until a transfer gave it the job's state.
    var holdsJobState = true
    /// Whether `run` was called before (only the first call synchronises the initial state).
    var ranBefore = false

    // Guarded by `lock` (the heartbeat thread records misses).
    private var recorder = PhalanxMetrics()

    /// Where this member records its metrics (swift-metrics; by default made by the factory
    /// the program bootstrapped when the member was created). Set it on the training thread.
    public var metrics: PhalanxMetrics {
        get {
            lock.lock()
            defer { lock.unlock() }
            return recorder
        }
        set {
            lock.lock()
            recorder = newValue
            lock.unlock()
            newValue.identify(member: id, minimumWorldSize: options.minimumMembers)
        }
    }

    /// Called on the training thread after each change of members, once the state is restored
    /// (e.g. to rescale the learning rate, or to log `change.summary`).
    public var onMembershipChange: ((MembershipChange) -> Void)?
    /// Called on the training thread with each step's outcome.
    public var onStepOutcome: ((StepOutcome) -> Void)?
    /// Called on the training thread after this member handed a durable checkpoint of `step` to
    /// the background writer, with when that began and ended (for timelines).
    public var onCheckpoint: ((_ step: Int, _ start: Date, _ end: Date) -> Void)?

    init(options: ElasticOptions, node: MemberNode, heartbeat: HeartbeatService, core: MembershipCore, id: Int, peersFile: String?, logger: Logger) {
        self.options = options
        self.node = node
        self.heartbeat = heartbeat
        self.core = core
        self.id = id
        self.peersFile = peersFile
        self.logger = logger
        self.channel = MessageChannel(node: node, logger: logger, handshakeTimeout: options.handshakeTimeout)
        self.ring = RingCommunicator(transport: LoneTransport(), epoch: 0)
        recorder.identify(member: id == MemberNode.newcomerID ? nil : id, minimumWorldSize: options.minimumMembers)
    }

    deinit { shutdown() }

    /// The current membership.
    public var membership: Membership {
        lock.lock()
        defer { lock.unlock() }
        return core.membership
    }

    /// This member's ring position now (read it on the training thread, like `id`).
    public var rank: Int { ring.rank }
    /// The number of members now (training thread): the ring's, or before this process built
    /// its first ring (a newcomer just admitted) the agreed membership's.
    public var worldSize: Int {
        guard ringMembership == nil else { return ring.worldSize }
        lock.lock()
        defer { lock.unlock() }
        return max(1, core.membership.members.count)
    }
    /// The address joiners and members reach this member at (training thread).
    public var address: MemberAddress { node.address(id: id) }
    /// Connections refused by this member's listener (strangers, wrong secrets).
    public var refusedConnections: Int { node.refusedConnections }

    /// Asks `run` to return at the next step boundary (callable from any thread, e.g. a signal
    /// handler); a step failing meanwhile is not recovered. `ElasticRunSummary.stopped` tells.
    public func requestStop() {
        lock.lock()
        stopping = true
        lock.broadcast()
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
        lock.lock()
        closed = true
        lock.broadcast()
        lock.unlock()
        heartbeat.stop()
        channel.close()
        transport?.close()
    }

    var collectiveOptions: CollectiveOptions { CollectiveOptions(timeout: options.failureTimeout) }

    // MARK: Starting

    /// Joins the job described by the environment: as an initial member (rank, world size and
    /// rendezvous from PHALANX_*/torchrun/OMPI/Slurm variables; rank 0 hosts the rendezvous
    /// unless `PHALANX_RENDEZVOUS_EXTERNAL=1`), or as a joiner when `PHALANX_JOIN` names member
    /// addresses ("host:port,…"), or is "1" and `PHALANX_PEERS_FILE` lists them (the members
    /// keep that file up to date). `PHALANX_WITNESS=host:port` names the launcher's witness.
    /// - Throws: `SocketError`, `HandshakeError`, `CollectiveError`, `ElasticError`.
    public static func start(
        options: ElasticOptions = ElasticOptions(), variables: [String: String] = LaunchEnvironment.processEnvironment(),
        logger: Logger = Logger(label: "phalanx.elastic")
    ) throws -> ElasticMember {
        try options.validate()
        var options = options
        if variables["PHALANX_WIRE_PROTECTION"] != nil { options.wireProtection = try WireProtection.fromEnvironment(variables) }
        var logger = logger
        // PHALANX_LOG_LEVEL=debug shows every protocol event and data-plane instruction.
        if let level = variables["PHALANX_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) { logger.logLevel = level }
        let peersFile = variables["PHALANX_PEERS_FILE"]
        let witness = variables["PHALANX_WITNESS"].flatMap(parseAddress)
        // Every host this process listens on or reaches: a job beyond loopback needs a secret.
        let reached = ([variables["PHALANX_HOST"], witness?.host] as [String?]).compactMap { $0 }
        if let join = variables["PHALANX_JOIN"] {
            // "host:port,…", or "1" to read the members' addresses from the peers file.
            let addresses = join == "1" ? peersFile.map(PeersFile.read) ?? [] : join.split(separator: ",").map(String.init)
            let hosts = addresses.compactMap { MemberAddress(id: 0, parsing: $0)?.host }
            let credentials = try JobCredentials.fromEnvironment(variables, addresses: reached + hosts, logger: logger)
            return try ElasticMember.join(
                addresses: addresses,
                host: variables["PHALANX_HOST"] ?? addresses.first.flatMap { $0.split(separator: ":").first }.flatMap { MemberNode.localAddress(toward: String($0)) } ?? "127.0.0.1",
                credentials: credentials, options: options, witness: witness, peersFile: peersFile, logger: logger)
        }
        let environment = try LaunchEnvironment.detect(from: variables)
        let credentials = try JobCredentials.fromEnvironment(variables, addresses: reached + [environment.masterAddress], logger: logger)
        // The address others reach this member at: PHALANX_HOST, else the local end of the
        // route to the rendezvous (right on one machine and across hosts alike).
        let host = variables["PHALANX_HOST"] ?? MemberNode.localAddress(toward: environment.masterAddress) ?? environment.masterAddress
        let node = try MemberNode(host: host, credentials: credentials, protection: options.wireProtection, logger: logger)
        let heartbeat = try HeartbeatService(host: host, port: node.port, credentials: credentials,
                                             interval: options.heartbeatInterval, timeout: options.heartbeatTimeout, logger: logger)
        node.memberID = environment.rank
        let server = try RendezvousServer.hostedByThisRank(
            environment, variables: variables, credentials: credentials, timeout: options.startTimeout, logger: logger)
        let core = MembershipCore(config: options.membershipConfig(address: node.address(id: environment.rank), witness: witness))
        let member = ElasticMember(options: options, node: node, heartbeat: heartbeat, core: core, id: environment.rank, peersFile: peersFile, logger: logger)
        member.channel.id = environment.rank
        member.listen()
        var members = [node.address(id: 0)]
        if environment.worldSize > 1 {
            members = try node.register(
                rank: environment.rank, worldSize: environment.worldSize,
                server: PeerTable.Endpoint(host: environment.masterAddress, port: environment.masterPort),
                storePrefix: environment.agentStorePrefix, timeout: options.startTimeout)
        }
        if let server, case let .failure(error) = server.wait() { throw error }
        let membership = Membership(epoch: 1, members: members, nextID: environment.worldSize)
        if environment.rank == 0, let peersFile { PeersFile.write(membership, to: peersFile) }
        member.lock.lock()
        let actions = member.core.start(membership: membership, id: environment.rank)
        let outside = member.route(actions)
        member.lock.unlock()
        member.perform(outside)
        // The first ring is built here. A neighbour that died since it registered (a fault
        // during the start) is the first step's failure: `run` leaves it to the protocol, and
        // the others go on without it.
        try member.takeInstallRing()
        do {
            try member.buildPendingRing()
        } catch {
            logger.warning("member \(environment.rank) could not build the first ring (\(error)); the members agree on one without the missing member")
        }
        return member
    }

    /// Asks the members at `addresses` ("host:port") to admit this process and returns once it
    /// is admitted (its state arrives in `run`).
    /// - Throws: `ElasticError.joinRefused` (the job is full, stopped or finished) or
    ///   `.noMemberReachable` when no member admitted it within the start timeout.
    public static func join(
        addresses: [String], host: String, credentials: JobCredentials, options: ElasticOptions = ElasticOptions(),
        witness: MemberAddress? = nil, peersFile: String? = nil, logger: Logger = Logger(label: "phalanx.elastic")
    ) throws -> ElasticMember {
        try options.validate()
        if let peersFile, let step = PeersFile.finishedStep(peersFile) { throw ElasticError.jobFinished(step: step) }
        let node = try MemberNode(host: host, credentials: credentials, protection: options.wireProtection, logger: logger)
        let heartbeat = try HeartbeatService(host: host, port: node.port, credentials: credentials,
                                             interval: options.heartbeatInterval, timeout: options.heartbeatTimeout, logger: logger)
        let core = MembershipCore(config: options.membershipConfig(address: node.address(id: MemberNode.newcomerID), witness: witness))
        let member = ElasticMember(options: options, node: node, heartbeat: heartbeat, core: core, id: MemberNode.newcomerID, peersFile: peersFile, logger: logger)
        member.holdsJobState = false
        member.listen()
        let directory = addresses.compactMap(parseAddress)
        member.lock.lock()
        let outside = member.route(member.core.join(directory: directory))
        member.lock.unlock()
        member.perform(outside)
        try member.awaitAdmission(directory: directory)
        return member
    }

    static func parseAddress(_ text: String) -> MemberAddress? { MemberAddress(id: MemberNode.newcomerID, parsing: text) }

    /// Waits (bounded by the start timeout) until the core is admitted or gives up; fails
    /// early when every address refused this process (a wrong secret, nobody listening).
    func awaitAdmission(directory: [MemberAddress]) throws {
        let started = Date()
        let deadline = started.addingTimeInterval(Double(options.startTimeout / .milliseconds(1)) / 1000)
        lock.lock()
        defer { lock.unlock() }
        while core.phase == .joining, !closed {
            _ = lock.wait(until: Date().addingTimeInterval(0.1))
            if let peersFile, let step = PeersFile.finishedStep(peersFile) { throw ElasticError.jobFinished(step: step) }
            let tried = directory.map { "\($0.host):\($0.port)" }
            if Date() >= deadline {
                throw ElasticError.noMemberReachable(tried: tried, lastError: "no member admitted this process within \(options.startTimeout)")
            }
            if let failures = channel.undeliverable(directory) {
                throw ElasticError.noMemberReachable(tried: failures, lastError: failures.last ?? "")
            }
        }
        if let step = core.jobFinishedAt { throw ElasticError.jobFinished(step: step) }
        if case let .stopped(reason) = core.phase { throw ElasticError.joinRefused(reason: reason) }
        if let assigned = core.id {
            id = assigned
            node.memberID = assigned
            channel.id = assigned
            recorder.identify(member: assigned, minimumWorldSize: options.minimumMembers)
            logger.info("member \(assigned) admitted at epoch \(core.membership.epoch) with \(core.membership.members.count) members")
        }
    }

    /// Starts the listener and heartbeat threads.
    func listen() {
        channel.start { [weak self] message, sender in self?.feed(.received(message, from: sender)) }
        heartbeat.onSuspect = { [weak self] peer, silence in
            self?.metrics.heartbeatMissed()
            self?.feed(.suspected(id: peer, reason: "no heartbeat for \(silence)"))
        }
        heartbeat.start()
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
