import Foundation
import Logging
import PhalanxCollectives
import Synchronization

/// The ring transport over TCP: one authenticated connection to each neighbour, data sent
/// straight from and received straight into the caller's memory, both directions at once.
///
/// Frames are a 48-byte header (`Wire`) and the payload. Every wait is bounded: an exchange
/// fails with `.timeout` after `timeout` without progress, with `.connectionLost` as soon as a
/// neighbour's connection closes, and with `.peerAborted` when a neighbour reports a failure.
public final class TCPTransport: Transport, @unchecked Sendable {
    /// This rank.
    public let rank: Int
    /// The number of ranks.
    public let worldSize: Int
    /// The membership epoch this ring was built for.
    public let epoch: UInt64
    /// What protects the data frames (`WireProtection`).
    public let protection: WireProtection
    let logger: Logger
    /// Everything that changes after the ring is built. The training thread uses the
    /// transport, but `close` and `abort` may come from another one: one lock guards it all
    /// (taken a few times per exchange, never while waiting on a socket).
    private let links: Mutex<Links>

    /// The transport's mutable state.
    struct Links {
        /// The connection to the right neighbour (we send on it).
        var right: Socket?
        /// The connection from the left neighbour (we receive on it).
        var left: Socket?
        /// Why the transport was aborted, once it was.
        var aborted: CollectiveError?
        /// Where the last exchange left the outgoing stream when it stopped mid-frame (nil: at a
        /// frame boundary).
        var outgoingRemainder: OutgoingRemainder?
        /// Where the last exchange left the incoming stream when it stopped mid-frame.
        var incomingRemainder: IncomingRemainder?
    }

    /// The connection to the right neighbour (we send on it).
    var right: Socket? { links.withLock { $0.right } }
    /// The connection from the left neighbour (we receive on it).
    var left: Socket? { links.withLock { $0.left } }
    /// Why the transport was aborted, once it was.
    var aborted: CollectiveError? { links.withLock { $0.aborted } }
    /// Where the last exchange left the outgoing stream when it stopped mid-frame.
    var outgoingRemainder: OutgoingRemainder? {
        get { links.withLock { $0.outgoingRemainder } }
        set { links.withLock { $0.outgoingRemainder = newValue } }
    }
    /// Where the last exchange left the incoming stream when it stopped mid-frame.
    var incomingRemainder: IncomingRemainder? {
        get { links.withLock { $0.incomingRemainder } }
        set { links.withLock { $0.incomingRemainder = newValue } }
    }

    /// Records `error` as the reason of the abort; false when the transport was aborted already.
    func markAborted(_ error: CollectiveError) -> Bool {
        links.withLock { state in
            guard state.aborted == nil else { return false }
            state.aborted = error
            return true
        }
    }
    /// Elastic mode: another thread may stop an exchange through it.
    let interruption: Interruption?
    /// Elastic mode: called instead of sending abort frames, so the connections stay usable.
    let abortHandler: (@Sendable (CollectiveError) -> Void)?

    init(
        rank: Int, worldSize: Int, epoch: UInt64, right: Socket?, left: Socket?, logger: Logger, protection: WireProtection = .none,
        interruption: Interruption? = nil, abortHandler: (@Sendable (CollectiveError) -> Void)? = nil
    ) {
        self.protection = protection
        self.rank = rank
        self.worldSize = worldSize
        self.epoch = epoch
        self.links = Mutex(Links(right: right, left: left))
        self.logger = logger
        self.interruption = interruption
        self.abortHandler = abortHandler
    }

    var leftRank: Int { (rank - 1 + worldSize) % worldSize }
    var rightRank: Int { (rank + 1) % worldSize }

    /// Closes both connections; neighbours see the connection closed.
    public func close() {
        right?.close()
        left?.close()
    }

    deinit { close() }

    /// Hands both connections over (to the next epoch's transport); this one no longer owns them.
    func detachConnections() -> (right: Socket?, left: Socket?) {
        links.withLock { state in
            defer { state.right = nil; state.left = nil }
            return (state.right, state.left)
        }
    }

    // MARK: Connecting

    /// Builds the ring: listens, registers with the rendezvous at `server`, then connects to the
    /// right neighbour while accepting (and authenticating) the left one. Strangers that connect
    /// to the listener meanwhile are refused and logged.
    /// - Throws: `SocketError` (rendezvous or connection failures, timeouts naming the peer) or
    ///   `HandshakeError` when the right neighbour cannot prove the secret.
    ///
    /// With `storePrefix`, `server` is torchrun's c10d store and the ranks exchange their
    /// addresses there under that prefix (`LaunchEnvironment.agentStorePrefix`).
    public static func connect(
        rank: Int, worldSize: Int, server: PeerTable.Endpoint, storePrefix: String? = nil, credentials: JobCredentials, epoch: UInt64 = 0,
        timeout: Duration = .seconds(60), protection: WireProtection = .none, logger: Logger = Logger(label: "phalanx.tcp")
    ) throws -> TCPTransport {
        guard worldSize > 1 else { return TCPTransport(rank: 0, worldSize: 1, epoch: epoch, right: nil, left: nil, logger: logger, protection: protection) }
        let deadline = Deadline(after: timeout)
        if let storePrefix {
            let store = try TorchStoreClient(host: server.host, port: server.port, deadline: deadline)
            defer { store.close() }
            let listener = try Socket.listen(host: store.localHost, port: 0)
            let table = try StoreRendezvous.exchange(
                store, prefix: storePrefix, rank: rank, worldSize: worldSize,
                endpoint: PeerTable.Endpoint(host: store.localHost, port: listener.localPort), deadline: deadline)
            return try connect(rank: rank, table: table, listener: listener, credentials: credentials, epoch: epoch, deadline: deadline,
                               protection: protection, logger: logger)
        }
        // Listen on the interface that reaches the rendezvous server.
        let registration = try RendezvousClient.open(server: server.host, port: server.port, rank: rank, credentials: credentials, deadline: deadline)
        let localHost = registration.localHost
        let listener = try Socket.listen(host: localHost, port: 0)
        let table = try RendezvousClient.exchange(
            registration, server: server.host, port: server.port, rank: rank, worldSize: worldSize,
            endpoint: PeerTable.Endpoint(host: localHost, port: listener.localPort), deadline: deadline)
        return try connect(rank: rank, table: table, listener: listener, credentials: credentials, epoch: epoch, deadline: deadline,
                           protection: protection, logger: logger)
    }

    static func connect(
        rank: Int, table: PeerTable, listener: Socket, credentials: JobCredentials, epoch: UInt64, deadline: Deadline,
        protection: WireProtection = .none, logger: Logger
    ) throws -> TCPTransport {
        let worldSize = table.endpoints.count
        let leftRank = (rank - 1 + worldSize) % worldSize, rightRank = (rank + 1) % worldSize
        // Both ends of every edge connect at once, and a handshake needs its acceptor to speak
        // first: the left neighbour comes through the gate's thread while this one connects to
        // the right. Strangers and silent connections wait in the gate; the first connection
        // that proves to be rank `leftRank` at `epoch` is the left neighbour.
        let neighbour = FirstSocket()
        let gate = HandshakeGate(listener: listener, credentials: credentials, purpose: .ring, logger: logger, identity: { rank },
                                 admit: { $0.rank == leftRank && $0.epoch == epoch }) { socket, _ in
            if !neighbour.offer(socket) { socket.close() }
        }
        gate.start()
        let rightResult = Result<Socket, Error> {
            let endpoint = table.endpoints[rightRank]
            let socket = try Socket.connect(host: endpoint.host, port: endpoint.port, deadline: deadline)
            let peer = try Handshake.connect(socket, credentials: credentials, purpose: .ring, rank: rank, epoch: epoch, deadline: deadline)
            guard peer == rightRank else {
                throw SocketError("connect", endpoint: socket.endpoint, reason: "expected rank \(rightRank), reached rank \(peer)")
            }
            return socket
        }
        let accepted = neighbour.wait(until: deadline)
        gate.stop()
        listener.close()
        let right = try rightResult.get()
        guard let left = accepted else {
            throw SocketError("accept", endpoint: listener.endpoint, reason: "timed out waiting for rank \(leftRank) to connect")
        }
        right.configureForData()
        left.configureForData()
        return TCPTransport(rank: rank, worldSize: worldSize, epoch: epoch, right: right, left: left, logger: logger, protection: protection)
    }
}

/// The first socket handed over by another thread (the gate's), under a lock.
final class FirstSocket: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    // Guarded by `lock`.
    private let lock = NSLock()
    private var socket: Socket?

    /// Keeps `socket` unless one was kept already; false then (the caller closes it).
    func offer(_ socket: Socket) -> Bool {
        lock.lock()
        let first = self.socket == nil
        if first { self.socket = socket }
        lock.unlock()
        if first { semaphore.signal() }
        return first
    }

    /// The socket, or nil when none came before `deadline`.
    func wait(until deadline: Deadline) -> Socket? {
        guard semaphore.wait(timeout: .now() + .milliseconds(Int(deadline.pollMilliseconds))) == .success else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return socket
    }
}
