#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// Liveness between ring neighbours over UDP, so that a member that hangs with its connections
/// open (SIGSTOP, a stuck thread) is noticed even while nobody is in a collective.
///
/// Every `interval` a member sends an authenticated datagram to each watched peer; a peer not
/// heard from for `timeout` is reported through `onSuspect` once. `alert` sends a datagram that
/// makes every receiver at the same epoch call `onAlert` at once: the fast path by which one
/// member tells all others that the membership must change.
///
///     "PHXB" kind(1: beat, 2: alert) 0 0 0 epoch(8) sender(4) sequence(4) mac(16)
///     mac = HMAC-SHA256(secret, jobID | first 24 bytes)[0..<16]
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

    private let descriptor: Int32
    private let credentials: JobCredentials
    private let logger: Logger
    private let lock = NSLock()
    private var suspectHandler: (@Sendable (Int, Duration) -> Void)?
    private var alertHandler: (@Sendable (Int) -> Void)?
    private var selfID = MemberNode.newcomerID
    private var epoch: UInt64 = 0
    private var peers: [(id: Int, address: sockaddr_in)] = []
    private var suspicious = true
    private var lastHeard: [Int: ContinuousClock.Instant] = [:]
    private var reported: Set<Int> = []
    private var sequence: UInt32 = 0
    private var stopped = false
    private var running = false

    static let packetSize = 40

    /// Binds UDP `host:port` (the member's listener port number).
    /// - Throws: `SocketError` when the port cannot be bound.
    public init(host: String, port: UInt16, credentials: JobCredentials, interval: Duration = .milliseconds(200),
                timeout: Duration = .seconds(2), logger: Logger = Logger(label: "phalanx.heartbeat")) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket(UDP)", endpoint: "\(host):\(port)", errno: errno) }
        var address = try Socket.resolve(host, port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SocketError("bind(UDP)", endpoint: "\(host):\(port)", errno: code)
        }
        descriptor = fd
        self.credentials = credentials
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    deinit {
        stop()
        Glibc.close(descriptor)
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
        let resolved = peers.compactMap { peer in (try? Socket.resolve(peer.host, port: peer.port)).map { (peer.id, $0) } }
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
            if let target = try? Socket.resolve(address.host, port: address.port) { send(kind: 2, id: id, epoch: epoch, to: target) }
        }
    }

    private func packet(kind: UInt8, id: Int, epoch: UInt64, sequence: UInt32) -> [UInt8] {
        var body = Array("PHXB".utf8) + [kind, 0, 0, 0] + Wire.bytes(epoch) + Wire.bytes(UInt32(truncatingIfNeeded: id)) + Wire.bytes(sequence)
        body += HMAC.sha256(key: credentials.secret, message: Array(credentials.jobID.utf8) + body).prefix(16)
        return body
    }

    private func send(kind: UInt8, id: Int, epoch: UInt64, to address: sockaddr_in) {
        lock.lock()
        sequence &+= 1
        let number = sequence
        lock.unlock()
        let bytes = packet(kind: kind, id: id, epoch: epoch, sequence: number)
        var target = address
        _ = bytes.withUnsafeBytes { raw in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    private func loop() {
        var nextBeat = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 256)
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
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, max(1, Deadline(nextBeat).pollMilliseconds)) > 0 else { continue }
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n <= 0 { break }
                receive(Array(buffer[0..<n]))
            }
        }
    }

    private func receive(_ bytes: [UInt8]) {
        guard bytes.count == Self.packetSize, Array(bytes[0..<4]) == Array("PHXB".utf8) else { return }
        let expected = HMAC.sha256(key: credentials.secret, message: Array(credentials.jobID.utf8) + bytes[0..<24]).prefix(16)
        guard HMAC.constantTimeEqual(Array(expected), Array(bytes[24..<40])) else { return }
        let kind = bytes[4]
        let epoch = Wire.uint64(bytes, at: 8)
        let sender = Int(Wire.uint32(bytes, at: 16))
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
