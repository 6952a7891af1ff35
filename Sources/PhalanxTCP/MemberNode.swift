#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// An elastic member's network presence: one long-lived TCP listener that every other member
/// and every newcomer reaches it on.
///
/// Each accepted connection passes the job's handshake (purpose "member"), then names its
/// intent in one byte: a ring connection (kept for `buildRing`, keyed by the sender's id and
/// epoch) or a control message (handed to the handler given to `start`). Strangers, bad secrets
/// and garbage are refused, logged and counted; the member is not disturbed.
public final class MemberNode: @unchecked Sendable {
    /// The handshake id a process uses before it is a member (a joiner).
    public static let newcomerID = Int(UInt32.max)

    /// The listener's host (the address other members reach).
    public let host: String
    /// The listener's port (TCP) and the heartbeat's (UDP).
    public let port: UInt16
    /// The job's credentials.
    public let credentials: JobCredentials
    /// What protects the data frames of the rings this node builds.
    public let protection: WireProtection
    let logger: Logger
    private let listener: Socket
    private let condition = NSCondition()
    private var ringSockets: [RingKey: Socket] = [:]
    private var running = false
    private var stopped = false
    private var refused = 0
    private var serving = 0
    private var gate: HandshakeGate?
    /// Authenticated connections served at once, at most (unauthenticated ones wait in the
    /// `HandshakeGate`, which spends no thread on them).
    static let maximumServing = 256
    /// The member id this node answers handshakes with (set once known).
    private var identity = MemberNode.newcomerID

    struct RingKey: Hashable {
        let from: Int
        let epoch: UInt64
    }

    enum Intent: UInt8 {
        case ring = 1
        case control = 2
    }

    /// Listens on `host` at `port` (0: a free port); its rings' frames get `protection`.
    /// - Throws: `SocketError` when the address cannot be bound.
    public init(host: String, port: UInt16 = 0, credentials: JobCredentials, protection: WireProtection = .none,
                logger: Logger = Logger(label: "phalanx.member")) throws {
        listener = try Socket.listen(host: host, port: port)
        self.host = host
        self.port = listener.localPort
        self.credentials = credentials
        self.protection = protection
        self.logger = logger
    }

    deinit { close() }

    /// The local address this machine uses to reach `host` (the interface the route to it
    /// leaves by): what a member advertises when `PHALANX_HOST` does not say. Nil when there is
    /// no route. No packet is sent.
    public static func localAddress(toward host: String, port: UInt16 = 9) -> String? {
        guard var target = try? Socket.resolve(host, port: port) else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return Socket.describe(local).split(separator: ":").first.map(String.init)
    }

    /// The address of this node under member id `id`.
    public func address(id: Int) -> MemberAddress { MemberAddress(id: id, host: host, port: port) }

    /// The id this node proves in handshakes it accepts.
    public var memberID: Int {
        get { condition.lock(); defer { condition.unlock() }; return identity }
        set { condition.lock(); identity = newValue; condition.unlock() }
    }

    /// Connections refused so far (strangers, bad secrets, garbage, silence), for logs and tests.
    public var refusedConnections: Int {
        condition.lock()
        defer { condition.unlock() }
        return refused + (gate?.refusedConnections ?? 0)
    }

    /// Starts accepting on a background thread. `handler` is called on a connection's own thread
    /// with each control message; it may answer at once or keep the request to answer later.
    public func start(handler: @escaping @Sendable (ControlRequest) -> Void) {
        condition.lock()
        guard !running else { condition.unlock(); return }
        running = true
        condition.unlock()
        openGate(handler)
    }

    /// Stops accepting and closes the listener and every unclaimed ring connection.
    public func close() {
        condition.lock()
        stopped = true
        let unclaimed = ringSockets.values
        ringSockets = [:]
        let gate = self.gate
        condition.unlock()
        gate?.stop()
        for socket in unclaimed { socket.close() }
        listener.shutdown()
        listener.close()
    }

    /// Opens the listener's `HandshakeGate`: each authenticated connection is served on a
    /// thread of its own (at most `maximumServing` at once).
    private func openGate(_ handler: @escaping @Sendable (ControlRequest) -> Void) {
        let gate = HandshakeGate(listener: listener, credentials: credentials, purpose: .member, logger: logger,
                                 identity: { [weak self] in self?.memberID ?? MemberNode.newcomerID }) { [weak self] socket, peer in
            guard let self else { return socket.close() }
            condition.lock()
            let admitted = serving < MemberNode.maximumServing && !stopped
            if admitted { serving += 1 } else { refused += 1 }
            condition.unlock()
            guard admitted else { return socket.close() }
            Thread { [self] in
                serve(socket, peer, handler)
                condition.lock()
                serving -= 1
                condition.unlock()
            }.start()
        }
        condition.lock()
        self.gate = gate
        let closedAlready = stopped
        condition.unlock()
        if !closedAlready { gate.start() }
    }

    /// An authenticated connection: its intent, then a ring connection kept for `buildRing` or a
    /// control message for the handler (members are trusted; the read is still bounded).
    private func serve(_ socket: Socket, _ peer: Handshake.Peer, _ handler: @Sendable (ControlRequest) -> Void) {
        let deadline = Deadline(after: .seconds(5))
        do {
            let intent = try socket.readExactly(1, deadline: deadline)
            switch Intent(rawValue: intent[0]) {
            case .ring:
                condition.lock()
                if stopped {
                    condition.unlock()
                    socket.close()
                    return
                }
                ringSockets[RingKey(from: peer.rank, epoch: peer.epoch)]?.close()
                ringSockets[RingKey(from: peer.rank, epoch: peer.epoch)] = socket
                condition.broadcast()
                condition.unlock()
            case .control:
                let payload = try ControlFraming.read(from: socket, deadline: deadline)
                handler(ControlRequest(senderID: peer.rank, senderEpoch: peer.epoch, payload: payload, socket: socket))
            case nil:
                throw HandshakeError.garbage(from: socket.endpoint)
            }
        } catch {
            condition.lock()
            refused += 1
            condition.unlock()
            logger.warning("member \(memberID) refused a connection: \(error)")
            socket.close()
        }
    }

    /// Waits for the ring connection member `from` opens for `epoch`; nil at the deadline.
    func ringConnection(from id: Int, epoch: UInt64, deadline: Deadline) -> Socket? {
        let key = RingKey(from: id, epoch: epoch)
        condition.lock()
        defer { condition.unlock() }
        while ringSockets[key] == nil && !stopped {
            if !condition.wait(until: Date(timeIntervalSinceNow: max(0, Double(deadline.pollMilliseconds) / 1000))) {
                if deadline.hasPassed { break }
            }
        }
        // Older epochs' connections will never be used.
        for (old, socket) in ringSockets where old.epoch < epoch {
            socket.close()
            ringSockets[old] = nil
        }
        return ringSockets.removeValue(forKey: key)
    }

    /// Opens an authenticated connection to `address` with `intent`, as member `id` at `epoch`.
    /// A newly admitted member may still answer as a newcomer for a few milliseconds (it learns
    /// its id with the decision): that answer is retried until the deadline.
    func open(_ address: MemberAddress, intent: Intent, id: Int, epoch: UInt64, deadline: Deadline) throws -> Socket {
        while true {
            let socket = try Socket.connect(host: address.host, port: address.port, deadline: deadline, retryRefused: false)
            socket.setNoDelay()
            let peer: Int
            do {
                peer = try Handshake.connect(socket, credentials: credentials, purpose: .member, rank: id, epoch: epoch, deadline: deadline)
            } catch let error as SocketError where error.isConnectionLost {
                socket.close()
                throw SocketError("handshake", endpoint: socket.endpoint,
                                  reason: "the member closed the connection during the handshake: it refused us (wrong job secret or job id?)")
            }
            if address.id == MemberNode.newcomerID || peer == address.id {
                try socket.writeAll([intent.rawValue], deadline: deadline)
                return socket
            }
            socket.close()
            guard peer == MemberNode.newcomerID, !deadline.hasPassed else {
                throw SocketError("connect", endpoint: socket.endpoint, reason: "expected member \(address.id), reached member \(peer)")
            }
            usleep(20_000)
        }
    }

    /// Sends a control message to `address` as member `id` at `epoch` and waits up to `timeout`
    /// for the answer. A refused connection fails at once (the member is gone), and a member
    /// that does not finish the handshake within `handshakeTimeout` (hung) fails then.
    /// - Throws: `SocketError` (unreachable, closed without answer, timed out) or
    ///   `HandshakeError` (it does not know the secret).
    public func request(
        _ payload: [UInt8], to address: MemberAddress, id: Int, epoch: UInt64, timeout: Duration, handshakeTimeout: Duration = .seconds(1)
    ) throws -> [UInt8] {
        let deadline = Deadline(after: timeout)
        let socket = try open(address, intent: .control, id: id, epoch: epoch, deadline: Deadline(after: min(timeout, handshakeTimeout)))
        defer { socket.close() }
        try ControlFraming.write(payload, to: socket, deadline: deadline)
        return try ControlFraming.read(from: socket, deadline: deadline)
    }

    /// Registers this node as launch rank `rank` of `worldSize` with the rendezvous at `server`
    /// and returns every initial member's address (member id = launch rank).
    /// - Throws: `SocketError`, `HandshakeError`.
    /// With `storePrefix`, `server` is torchrun's c10d store (`LaunchEnvironment.agentStorePrefix`).
    public func register(rank: Int, worldSize: Int, server: PeerTable.Endpoint, storePrefix: String? = nil, timeout: Duration) throws -> [MemberAddress] {
        let deadline = Deadline(after: timeout)
        if let storePrefix {
            let store = try TorchStoreClient(host: server.host, port: server.port, deadline: deadline)
            defer { store.close() }
            let table = try StoreRendezvous.exchange(
                store, prefix: storePrefix, rank: rank, worldSize: worldSize, endpoint: PeerTable.Endpoint(host: host, port: port), deadline: deadline)
            return table.endpoints.enumerated().map { MemberAddress(id: $0.offset, host: $0.element.host, port: $0.element.port) }
        }
        let socket = try RendezvousClient.open(server: server.host, port: server.port, rank: rank, credentials: credentials, deadline: deadline)
        let table = try RendezvousClient.exchange(
            socket, server: server.host, port: server.port, rank: rank, worldSize: worldSize,
            endpoint: PeerTable.Endpoint(host: host, port: port), deadline: deadline)
        return table.endpoints.enumerated().map { MemberAddress(id: $0.offset, host: $0.element.host, port: $0.element.port) }
    }
}
