import Foundation
import Logging
import PhalanxCollectives

/// Where each rank of a job listens for its left neighbour.
public struct PeerTable: Sendable, Equatable {
    /// `(host, port)` of rank i at index i.
    public var endpoints: [Endpoint]

    /// A TCP endpoint.
    public struct Endpoint: Sendable, Equatable {
        /// An IPv4 address or host name.
        public var host: String
        /// The TCP port.
        public var port: UInt16
        /// Makes an endpoint.
        public init(host: String, port: UInt16) {
            self.host = host
            self.port = port
        }
    }

    func encoded() -> [UInt8] {
        var out = Array("PHXT".utf8) + Wire.bytes(UInt32(endpoints.count))
        for e in endpoints {
            let host = Array(e.host.utf8)
            out += [UInt8(host.count >> 8), UInt8(host.count & 0xFF)] + host + [UInt8(e.port >> 8), UInt8(e.port & 0xFF)]
        }
        return out
    }
}

/// The rank-table exchange at the start of a job: every rank registers its listening endpoint
/// with one server (rank 0 by default, or a launcher) and gets everyone's back once all arrived.
///
///     client → server : "PHXR" rank(4) worldSize(4) hostLength(2) host port(2)
///     server → client : "PHXT" count(4) (hostLength(2) host port(2))×count   — or —
///                       "PHXE" message                                        (failure)
///
/// Both after the handshake, each in one authenticated, numbered `ControlFraming` message.
public final class RendezvousServer: @unchecked Sendable {
    /// The port it listens on (useful when started on port 0).
    public let port: UInt16
    private let listener: Socket
    private let worldSize: Int
    private let credentials: JobCredentials
    private let timeout: Duration
    private let logger: Logger
    private let done = DispatchSemaphore(value: 0)
    // Guarded by `lock`: the outcome, the refusals counted, the gate while it serves, the
    // test's table rewrite and whether it started.
    private let lock = NSLock()
    private var outcome: Result<PeerTable, SocketError>?
    private var refused = 0
    private var gate: HandshakeGate?
    private var onPath: (@Sendable (PeerTable) -> PeerTable)?

    /// For tests of an attacker on the network path: the table the ranks get is `rewrite`'s
    /// version of the registered one (a relay's address in place of a rank's). Set before
    /// `start`.
    @_spi(Testing) public func routeThroughPath(_ rewrite: @escaping @Sendable (PeerTable) -> PeerTable) {
        lock.lock()
        onPath = rewrite
        lock.unlock()
    }
    private var started = false
    /// Connections refused so far (strangers, bad secrets, garbage), for logs and tests.
    public var refusedConnections: Int {
        lock.lock()
        defer { lock.unlock() }
        return refused + (gate?.refusedConnections ?? 0)
    }

    private func countRefusal() {
        lock.lock()
        refused += 1
        lock.unlock()
    }

    /// Listens on `host:port` (0: any free port) for the `worldSize` ranks of one job.
    /// - Throws: `SocketError` if the port cannot be bound.
    public init(host: String, port: UInt16, worldSize: Int, credentials: JobCredentials, timeout: Duration = .seconds(60),
                logger: Logger = Logger(label: "phalanx.rendezvous")) throws {
        listener = try Socket.listen(host: host, port: port)
        self.port = listener.localPort
        self.worldSize = worldSize
        self.credentials = credentials
        self.timeout = timeout
        self.logger = logger
    }

    /// The rendezvous this process hosts for its job, already serving: rank 0 of a job of
    /// several ranks hosts it at the master address and port, unless
    /// `PHALANX_RENDEZVOUS_EXTERNAL=1` says a launcher does, or torchrun's agent store is used
    /// (`agentStorePrefix`). Nil for everyone else.
    /// - Throws: `SocketError` if the port cannot be bound.
    public static func hostedByThisRank(
        _ environment: LaunchEnvironment, variables: [String: String], credentials: JobCredentials, timeout: Duration,
        logger: Logger
    ) throws -> RendezvousServer? {
        guard environment.rank == 0, environment.worldSize > 1, environment.agentStorePrefix == nil,
              variables["PHALANX_RENDEZVOUS_EXTERNAL"] != "1" else { return nil }
        let server = try RendezvousServer(
            host: environment.masterAddress, port: environment.masterPort, worldSize: environment.worldSize,
            credentials: credentials, timeout: timeout, logger: logger)
        server.start()
        return server
    }

    /// Serves the job on a background thread; returns at once.
    public func start() {
        lock.lock()
        guard !started else { lock.unlock(); return }
        started = true
        lock.unlock()
        let thread = Thread { [self] in
            let result = serve()
            lock.lock()
            outcome = result
            lock.unlock()
            done.signal()
        }
        thread.start()
    }

    /// Whether the rendezvous is over (every rank registered and got the table, or it failed).
    public var isFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return outcome != nil
    }

    /// Waits for the background thread; returns the table or the failure.
    public func wait() -> Result<PeerTable, SocketError> {
        lock.lock()
        let running = started
        lock.unlock()
        guard running else { return .failure(SocketError("rendezvous", endpoint: ":\(port)", reason: "not started")) }
        done.wait()
        done.signal()
        lock.lock()
        defer { lock.unlock() }
        return outcome ?? .failure(SocketError("rendezvous", endpoint: ":\(port)", reason: "not started"))
    }

    private func serve() -> Result<PeerTable, SocketError> {
        let deadline = Deadline(after: timeout)
        let registry = Registry()
        // Handshakes run in the gate, all at once: silent strangers cannot hold up real ranks.
        let gate = HandshakeGate(listener: listener, credentials: credentials, purpose: .rendezvous, logger: logger, identity: { -1 }) { [weak self] socket, peer in
            guard let self else { return socket.close() }
            Thread { [self] in register(socket, peer, registry, deadline: Deadline(min(deadline.instant, .now + .seconds(5)))) }.start()
        }
        lock.lock()
        self.gate = gate
        lock.unlock()
        gate.start()
        defer {
            gate.stop()
            listener.close()
            // The ranks' connections end here (they close their side once they have the table).
            registry.condition.lock()
            let registered = registry.clients.values.map(\.0)
            registry.clients = [:]
            registry.condition.unlock()
            for socket in registered { socket.close() }
            lock.lock()
            refused += gate.refusedConnections
            self.gate = nil
            lock.unlock()
        }
        registry.condition.lock()
        while registry.clients.count < worldSize, !deadline.hasPassed {
            _ = registry.condition.wait(until: Date(timeIntervalSinceNow: max(0.001, Double(deadline.pollMilliseconds) / 1000)))
        }
        let clients = registry.clients
        registry.closed = true
        registry.condition.unlock()
        guard clients.count == worldSize else {
            let missing = (0..<worldSize).filter { clients[$0] == nil }
            return fail(clients, SocketError("rendezvous", endpoint: ":\(port)", reason: "timed out after \(timeout): ranks \(missing) never registered"))
        }
        var table = PeerTable(endpoints: (0..<worldSize).compactMap { clients[$0]?.1 })
        lock.lock()
        if let rewrite = onPath { table = rewrite(table) }
        lock.unlock()
        let reply = table.encoded()
        for (_, (socket, _)) in clients { try? ControlFraming.write(reply, to: socket, deadline: Deadline(after: .seconds(5))) }
        return .success(table)
    }

    /// The ranks registered so far, under `condition`.
    private final class Registry: @unchecked Sendable {
        let condition = NSCondition()
        var clients: [Int: (Socket, PeerTable.Endpoint)] = [:]
        var closed = false
    }

    /// Reads an authenticated rank's registration and records it (on the connection's thread).
    private func register(_ socket: Socket, _ peer: Handshake.Peer, _ registry: Registry, deadline step: Deadline) {
        do {
            let body = try ControlFraming.read(from: socket, deadline: step)
            guard body.count >= 14, Array(body[0..<4]) == Array("PHXR".utf8) else { throw HandshakeError.garbage(from: socket.endpoint) }
            let rank = Int(Wire.uint32(body, at: 4)), size = Int(Wire.uint32(body, at: 8))
            let hostLength = Int(body[12]) << 8 | Int(body[13])
            guard body.count == 14 + hostLength + 2 else { throw HandshakeError.garbage(from: socket.endpoint) }
            let host = String(decoding: body[14..<(14 + hostLength)], as: UTF8.self)
            let port = UInt16(body[14 + hostLength]) << 8 | UInt16(body[15 + hostLength])
            registry.condition.lock()
            guard !registry.closed else {
                registry.condition.unlock()
                socket.close()
                return
            }
            // A rank whose earlier registrant died (its connection closed) may register again:
            // a launcher restarts a worker that died before the job formed.
            if size == worldSize, rank == peer.rank, let (old, _) = registry.clients[rank], old.peerClosed() {
                logger.warning("rendezvous: rank \(rank) registered again (its first registrant is gone)")
                registry.clients[rank] = nil
            }
            guard size == worldSize, rank == peer.rank, rank >= 0, rank < worldSize, registry.clients[rank] == nil else {
                let reason = "rank \(rank) of \(size) does not fit a job of \(worldSize) ranks\(registry.clients[rank] != nil ? " (rank taken)" : "")"
                registry.condition.unlock()
                // Answered outside the lock: a slow reader delays nobody else.
                send(error: reason, to: socket, deadline: step)
                socket.close()
                countRefusal()
                logger.warning("rendezvous refused \(socket.endpoint): \(reason)")
                return
            }
            registry.clients[rank] = (socket, PeerTable.Endpoint(host: host, port: port))
            registry.condition.broadcast()
            registry.condition.unlock()
        } catch {
            countRefusal()
            logger.warning("rendezvous refused \(socket.endpoint): \(error)")
            socket.close()
        }
    }

    private func send(error reason: String, to socket: Socket, deadline: Deadline) {
        try? ControlFraming.write(Array("PHXE".utf8) + Array(reason.utf8.prefix(60_000)), to: socket, deadline: deadline)
    }

    private func fail(_ clients: [Int: (Socket, PeerTable.Endpoint)], _ error: SocketError) -> Result<PeerTable, SocketError> {
        logger.error("rendezvous failed: \(error)")
        for (_, (socket, _)) in clients { send(error: error.reason, to: socket, deadline: Deadline(after: .seconds(1))) }
        return .failure(error)
    }
}

/// The client side of the rendezvous.
enum RendezvousClient {
    /// Connects and authenticates to the server; the caller learns its own address from the
    /// socket (`localHost`) before registering.
    static func open(server host: String, port: UInt16, rank: Int, credentials: JobCredentials, deadline: Deadline) throws -> Socket {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        _ = try Handshake.connect(socket, credentials: credentials, purpose: .rendezvous, rank: rank, epoch: 0, deadline: deadline)
        return socket
    }

    /// Registers `endpoint` as rank `rank` of `worldSize` over `socket` (from `open`) and returns
    /// every rank's endpoint.
    static func exchange(
        _ socket: Socket, server host: String, port: UInt16, rank: Int, worldSize: Int, endpoint: PeerTable.Endpoint,
        deadline: Deadline
    ) throws -> PeerTable {
        defer { socket.close() }
        let hostBytes = Array(endpoint.host.utf8)
        var message = Array("PHXR".utf8) + Wire.bytes(UInt32(rank)) + Wire.bytes(UInt32(worldSize))
        message += [UInt8(hostBytes.count >> 8), UInt8(hostBytes.count & 0xFF)] + hostBytes + [UInt8(endpoint.port >> 8), UInt8(endpoint.port & 0xFF)]
        try ControlFraming.write(message, to: socket, deadline: deadline)
        let answer = try ControlFraming.read(from: socket, deadline: deadline)
        let garbage = HandshakeError.garbage(from: "\(host):\(port)")
        guard answer.count >= 4 else { throw garbage }
        if Array(answer[0..<4]) == Array("PHXE".utf8) {
            throw SocketError("rendezvous", endpoint: "\(host):\(port)", reason: String(decoding: answer.dropFirst(4), as: UTF8.self))
        }
        guard Array(answer[0..<4]) == Array("PHXT".utf8), answer.count >= 8 else { throw garbage }
        let count = Int(Wire.uint32(answer, at: 4))
        guard count == worldSize else {
            throw SocketError("rendezvous", endpoint: "\(host):\(port)", reason: "table of \(count) ranks for a job of \(worldSize)")
        }
        var endpoints: [PeerTable.Endpoint] = []
        var offset = 8
        for _ in 0..<count {
            guard offset + 2 <= answer.count else { throw garbage }
            let length = Int(answer[offset]) << 8 | Int(answer[offset + 1])
            guard offset + 4 + length <= answer.count else { throw garbage }
            let hostText = answer[(offset + 2)..<(offset + 2 + length)]
            let portAt = offset + 2 + length
            endpoints.append(PeerTable.Endpoint(host: String(decoding: hostText, as: UTF8.self), port: UInt16(answer[portAt]) << 8 | UInt16(answer[portAt + 1])))
            offset = portAt + 2
        }
        return PeerTable(endpoints: endpoints)
    }
}
