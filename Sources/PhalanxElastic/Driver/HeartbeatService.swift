import Foundation
import Logging
import PhalanxTCP

/// Liveness between ring neighbours over UDP, so that a member that hangs with its connections
/// open (SIGSTOP, a stuck thread) is noticed even while nobody is in a collective.
///
/// Every `interval` a member sends an authenticated datagram to each watched peer; a peer not
/// heard from for `timeout` is reported through `onSuspect` once. `alert` sends a datagram that
/// makes every receiver at the same epoch call `onAlert` at once: the fast path by which one
/// member tells all others that the membership must change.
///
///     "PHXB" kind(1: beat, 2: alert) 0 0 0 epoch(8) sender(4) number(8) tag(16)
///
/// with the tag and number of a `DatagramGuard` (purpose "heartbeat"): a captured beat or
/// alert replayed later is dropped (it can neither keep a hung member alive nor force another
/// membership change), and so is a stale datagram that arrives after a newer one.
public final class HeartbeatService: @unchecked Sendable {
    /// Time between beats.
    public let interval: Duration
    /// Silence after which a watched peer is suspected.
    public let timeout: Duration
    /// Called (on the heartbeat thread) with a watched peer's id and its silence.
    public var onSuspect: (@Sendable (Int, Duration) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return suspectHandler }
        set { lock.lock(); suspectHandler = newValue; lock.unlock() }
    }
    /// Called (on the heartbeat thread) with the sender's id when an alert for the watched
    /// epoch arrives.
    public var onAlert: (@Sendable (Int) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return alertHandler }
        set { lock.lock(); alertHandler = newValue; lock.unlock() }
    }

    private let socket: DatagramSocket
    private let logger: Logger
    private let lock = NSLock()
    private var suspectHandler: (@Sendable (Int, Duration) -> Void)?
    private var alertHandler: (@Sendable (Int) -> Void)?
    private var selfID = MemberNode.newcomerID
    private var epoch: UInt64 = 0
    private var peers: [(id: Int, address: DatagramSocket.Destination)] = []
    private var suspicious = true
    private var lastHeard: [Int: ContinuousClock.Instant] = [:]
    private var reported: Set<Int> = []
    private var stopped = false
    private var running = false
    private let guardian: DatagramGuard

    static let packetSize = 44

    /// Binds UDP `host:port` (the member's listener port number).
    /// - Throws: `SocketError` when the port cannot be bound.
    public init(host: String, port: UInt16, credentials: JobCredentials, interval: Duration = .milliseconds(200),
                timeout: Duration = .seconds(2), logger: Logger = Logger(label: "phalanx.heartbeat")) throws {
        socket = try DatagramSocket(host: host, port: port)
        guardian = DatagramGuard(credentials: credentials, purpose: "heartbeat")
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    deinit {
        stop()
        socket.close()
    }

    /// Starts the heartbeat thread.
    public func start() {
        lock.lock()
        guard !running else { lock.unlock(); return }
        running = true
        lock.unlock()
        Thread { [self] in loop() }.start()
    }

    /// Stops the heartbeat thread (at its next wake-up, within `interval`).
    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    /// From now on, beats go to `peers` and are expected from them, at `epoch` (beats of the
    /// epoch before count too: a neighbour may still be catching up), as member `id`. Each
    /// peer's silence is counted from now.
    public func watch(id: Int, epoch: UInt64, peers: [MemberAddress]) {
        let resolved = peers.compactMap { peer in (try? DatagramSocket.destination(host: peer.host, port: peer.port)).map { (peer.id, $0) } }
        lock.lock()
        selfID = id
        self.epoch = epoch
        self.peers = resolved
        let now = ContinuousClock.now
        lastHeard = Dictionary(peers.map { ($0.id, now) }, uniquingKeysWith: { a, _ in a })
        reported = []
        suspicious = true
        lock.unlock()
    }

    /// Keeps sending beats to the current peers but suspects no one until the next `watch`
    /// (while the membership changes).
    public func suspend() {
        lock.lock()
        suspicious = false
        lock.unlock()
    }

    /// Sends an alert for `epoch` from member `id` to every address, now.
    public func alert(id: Int, epoch: UInt64, to addresses: [MemberAddress]) {
        for address in addresses {
            if let target = try? DatagramSocket.destination(host: address.host, port: address.port) { send(kind: 2, id: id, epoch: epoch, to: target) }
        }
    }

    /// Datagrams dropped because their number was not new (replays and stale reorderings).
    public var replaysRefused: Int { guardian.replaysRefused }

    private func packet(kind: UInt8, id: Int, epoch: UInt64, number: UInt64) -> [UInt8] {
        let body = Array("PHXB".utf8) + [kind, 0, 0, 0] + Wire.bytes(epoch) + Wire.bytes(UInt32(truncatingIfNeeded: id)) + Wire.bytes(number)
        return body + guardian.tag(body)
    }

    private func send(kind: UInt8, id: Int, epoch: UInt64, to address: DatagramSocket.Destination) {
        socket.send(packet(kind: kind, id: id, epoch: epoch, number: guardian.nextNumber()), to: address)
    }

    private func loop() {
        var nextBeat = ContinuousClock.now
        while true {
            lock.lock()
            let done = stopped
            let (id, epoch, peers) = (selfID, self.epoch, self.peers)
            lock.unlock()
            if done { return }
            let now = ContinuousClock.now
            if now >= nextBeat {
                for peer in peers { send(kind: 1, id: id, epoch: epoch, to: peer.address) }
                nextBeat = now + interval
                checkSilence(now: now)
            }
            let wait = max(1, (nextBeat - ContinuousClock.now) / .milliseconds(1))
            guard socket.waitReadable(milliseconds: Int32(clamping: Int(wait))) else { continue }
            while let datagram = socket.receive() { receive(datagram) }
        }
    }

    private func receive(_ bytes: [UInt8]) {
        guard bytes.count == Self.packetSize, Array(bytes[0..<4]) == Array("PHXB".utf8) else { return }
        guard guardian.verify(tag: Array(bytes[28..<44]), of: Array(bytes[0..<28])) else { return }
        let kind = bytes[4]
        let epoch = Wire.uint64(bytes, at: 8)
        let sender = Int(Wire.uint32(bytes, at: 16))
        guard guardian.accept(number: Wire.uint64(bytes, at: 20), from: sender) else { return }
        lock.lock()
        let current = self.epoch
        let watched = lastHeard[sender] != nil
        if epoch == current || epoch &+ 1 == current, watched { lastHeard[sender] = .now }
        let handler = alertHandler
        lock.unlock()
        if kind == 2, epoch == current { handler?(sender) }
    }

    private func checkSilence(now: ContinuousClock.Instant) {
        lock.lock()
        var silent: [(Int, Duration)] = []
        for (peer, heard) in lastHeard where suspicious && now - heard > timeout && !reported.contains(peer) {
            reported.insert(peer)
            silent.append((peer, now - heard))
        }
        let handler = suspectHandler
        lock.unlock()
        for (peer, silence) in silent { handler?(peer, silence) }
    }
}
