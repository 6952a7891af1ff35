#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// Runs the acceptor's side of the handshake for every connection a listener accepts, all at
/// once on one thread, before any thread is spent on a connection: what stands between a
/// listener and strangers.
///
/// Each accepted connection gets the acceptor's hello at once and then `limits.deadline` to
/// send its whole answer; garbage is refused as soon as its first bytes arrive. Only a peer
/// that proved the job secret (and that `admit` accepts) reaches `authenticated`. A silent or
/// slow connection costs a descriptor and a few bytes until its deadline, never a thread, so a
/// flood of them neither delays the members that handshake meanwhile nor takes their place:
/// beyond `limits.maximumPerSource` unfinished handshakes from one address (or
/// `limits.maximumPending` in all), the oldest unfinished one is dropped, and a real peer
/// finishes within milliseconds of connecting.
final class HandshakeGate: @unchecked Sendable {
    /// The bounds on unauthenticated connections.
    struct Limits: Sendable {
        /// Time from accept to a complete, valid answer.
        var deadline: Duration = .seconds(2)
        /// Unfinished handshakes at once, from everywhere: 1,024, or an eighth of the process's
        /// descriptor limit when that is lower (a process has several listeners, and strangers
        /// must never take the descriptors its rings and checkpoints need).
        var maximumPending = Limits.pendingForDescriptorLimit
        /// Unfinished handshakes at once from one source address (a quarter of the above).
        var maximumPerSource = Limits.pendingForDescriptorLimit / 4
        /// Connections accepted in one pass before the gate reads what arrived (so a flood
        /// cannot keep it accepting while real peers wait).
        var acceptsPerPass = 64

        static let pendingForDescriptorLimit: Int = {
            var limit = rlimit()
            guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 128 }
            let soft = limit.rlim_cur == rlim_t.max ? UInt64(1 << 20) : UInt64(limit.rlim_cur)
            return Int(max(16, min(1024, soft / 8)))
        }()
    }

    private struct Pending {
        let socket: Socket
        let source: String
        let nonce: [UInt8]
        let deadline: ContinuousClock.Instant
        let order: Int
        var received: [UInt8] = []
        var needed = Handshake.connectorHeadSize
    }

    private let listener: Socket
    private let credentials: JobCredentials
    private let purpose: Handshake.Purpose
    private let limits: Limits
    private let logger: Logger
    private let identity: @Sendable () -> Int
    private let admit: (@Sendable (Handshake.Peer) -> Bool)?
    private let authenticated: @Sendable (Socket, Handshake.Peer) -> Void
    // Guarded by `lock`: whether the thread runs or should stop, and the count of refusals.
    // Everything else that changes belongs to the gate's thread.
    private let lock = NSLock()
    private var stopped = false
    private var running = false
    private var refused = 0
    private let finished = DispatchSemaphore(value: 0)

    /// Guards `listener` (non-blocking, already listening). `identity` gives the rank this side
    /// answers as; `admit` may refuse an authenticated peer before it is answered (it then
    /// never believes it is connected); `authenticated` is called on the gate's thread with each
    /// admitted connection, which it now owns (it must not block: hand the socket to a thread).
    init(listener: Socket, credentials: JobCredentials, purpose: Handshake.Purpose, limits: Limits = Limits(), logger: Logger,
         identity: @escaping @Sendable () -> Int, admit: (@Sendable (Handshake.Peer) -> Bool)? = nil,
         authenticated: @escaping @Sendable (Socket, Handshake.Peer) -> Void) {
        self.listener = listener
        self.credentials = credentials
        self.purpose = purpose
        self.limits = limits
        self.logger = logger
        self.identity = identity
        self.admit = admit
        self.authenticated = authenticated
    }

    /// Connections refused so far: strangers, bad secrets, garbage, silence past the deadline,
    /// and the oldest unfinished handshakes dropped beyond the limits.
    var refusedConnections: Int {
        lock.lock()
        defer { lock.unlock() }
        return refused
    }

    /// Starts the gate's thread.
    func start() {
        lock.lock()
        guard !running else { lock.unlock(); return }
        running = true
        lock.unlock()
        Thread { [self] in
            loop()
            finished.signal()
        }.start()
    }

    /// Stops the thread (within 100 ms) and closes every unfinished handshake; the listener is
    /// the caller's to close. Never call it from the gate's own callbacks (it waits for that
    /// thread).
    func stop() {
        lock.lock()
        stopped = true
        let wasRunning = running
        running = false
        lock.unlock()
        if wasRunning { finished.wait() }
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    /// Refusals not logged yet, and when the last log line was written: a flood is summed up
    /// once a second instead of a line per connection (gate thread only).
    private var unlogged = 0
    private var lastLog = ContinuousClock.now - .seconds(2)

    private func refuse(_ pending: Pending, _ reason: String) {
        lock.lock()
        refused += 1
        lock.unlock()
        pending.socket.close()
        unlogged += 1
        let now = ContinuousClock.now
        guard now - lastLog >= .seconds(1) else { return }
        let others = unlogged - 1
        logger.warning("refused \(pending.socket.endpoint) before it authenticated: \(reason)\(others > 0 ? " (and \(others) more connection(s) in the last second)" : "")")
        unlogged = 0
        lastLog = now
    }

    private func loop() {
        var pending: [Pending] = []
        var perSource: [String: Int] = [:]
        var arrivals = 0
        // After accept failed for want of descriptors: leave the listener alone until then.
        var acceptAgainAt = ContinuousClock.now
        defer { for connection in pending { connection.socket.close() } }
        while !isStopped {
            let now = ContinuousClock.now
            let nearest = pending.map(\.deadline).min().map { max(0, ($0 - now) / .milliseconds(1)) } ?? 100
            let listening = now >= acceptAgainAt
            var entries = [pollfd(fd: listening ? listener.descriptor : -1, events: Int16(POLLIN), revents: 0)]
            entries += pending.map { pollfd(fd: $0.socket.descriptor, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&entries, nfds_t(entries.count), Int32(min(100, nearest + 1)))
            if ready < 0, errno != EINTR {
                logger.error("handshake gate: poll failed: \(String(cString: strerror(errno)))")
                return
            }
            // Read what arrived; finished handshakes leave the list.
            var index = pending.count - 1
            while index >= 0 {
                if entries[index + 1].revents != 0 {
                    if let outcome = read(&pending[index]) {
                        let connection = pending.remove(at: index)
                        perSource[connection.source, default: 1] -= 1
                        switch outcome {
                        case let .failure(reason): refuse(connection, reason.description)
                        case let .success(peer): authenticated(connection.socket, peer)
                        }
                    }
                }
                index -= 1
            }
            let later = ContinuousClock.now
            pending.removeAll { connection in
                guard later >= connection.deadline else { return false }
                perSource[connection.source, default: 1] -= 1
                refuse(connection, "no complete handshake within \(limits.deadline)")
                return true
            }
            if listening, entries[0].revents != 0, !acceptSome(into: &pending, perSource: &perSource, arrivals: &arrivals) {
                acceptAgainAt = ContinuousClock.now + .milliseconds(100)
            }
            perSource = perSource.filter { $0.value > 0 }
            flushRefusals()
        }
        flushRefusals(force: true)
    }

    /// Logs the refusals the last second's summary line did not name yet.
    private func flushRefusals(force: Bool = false) {
        let now = ContinuousClock.now
        guard unlogged > 0, force || now - lastLog >= .seconds(1) else { return }
        logger.warning("refused \(unlogged) more connection(s) before they authenticated")
        unlogged = 0
        lastLog = now
    }

    /// Accepts up to `limits.acceptsPerPass` waiting connections and sends each the hello;
    /// false when accepting failed (out of descriptors: the caller waits a little).
    private func acceptSome(into pending: inout [Pending], perSource: inout [String: Int], arrivals: inout Int) -> Bool {
        for _ in 0..<limits.acceptsPerPass where !isStopped {
            let accepted: Socket?
            do { accepted = try listener.accept(deadline: Deadline(after: .zero)) } catch {
                logger.error("handshake gate: accept failed: \(error)")
                return false
            }
            guard let socket = accepted else { return true }
            let source = String(socket.endpoint.split(separator: ":").first ?? "")
            if perSource[source, default: 0] >= limits.maximumPerSource,
               let oldest = pending.indices.filter({ pending[$0].source == source }).min(by: { pending[$0].order < pending[$1].order }) {
                refuse(pending.remove(at: oldest), "more than \(limits.maximumPerSource) unfinished handshakes from \(source)")
                perSource[source, default: 1] -= 1
            } else if pending.count >= limits.maximumPending, let oldest = pending.indices.min(by: { pending[$0].order < pending[$1].order }) {
                let dropped = pending.remove(at: oldest)
                perSource[dropped.source, default: 1] -= 1
                refuse(dropped, "more than \(limits.maximumPending) unfinished handshakes")
            }
            socket.setNoDelay()
            let nonce = Handshake.nonce()
            arrivals += 1
            let connection = Pending(socket: socket, source: source, nonce: nonce, deadline: .now + limits.deadline, order: arrivals)
            // 38 bytes into an empty send buffer: written at once, or the peer is already gone.
            do { try socket.writeAll(Handshake.hello(purpose: purpose, nonce: nonce), deadline: Deadline(after: .milliseconds(100))) } catch {
                refuse(connection, "\(error)")
                continue
            }
            pending.append(connection)
            perSource[source, default: 0] += 1
        }
        return true
    }

    /// Reads what `connection` sent; a result once the handshake is over either way.
    private func read(_ connection: inout Pending) -> Result<Handshake.Peer, Failure>? {
        var buffer = [UInt8](repeating: 0, count: connection.needed - connection.received.count)
        let n = buffer.withUnsafeMutableBytes { recv(connection.socket.descriptor, $0.baseAddress, $0.count, 0) }
        if n == 0 { return .failure(Failure("closed the connection during the handshake")) }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            return .failure(Failure(String(cString: strerror(errno))))
        }
        connection.received += buffer.prefix(n)
        let endpoint = connection.socket.endpoint
        do {
            if connection.received.count == Handshake.connectorHeadSize, connection.needed == Handshake.connectorHeadSize {
                connection.needed = try Handshake.connectorMessageLength(head: connection.received[...], from: endpoint)
            }
            guard connection.received.count == connection.needed else { return nil }
            let (peer, reply, keys) = try Handshake.answer(connection.received, nonceA: connection.nonce, credentials: credentials, purpose: purpose,
                                                     rank: identity(), from: endpoint)
            if let admit, !admit(peer) { throw HandshakeError.unexpectedPeer(from: endpoint, rank: peer.rank, epoch: peer.epoch) }
            try connection.socket.writeAll(reply, deadline: Deadline(after: .seconds(1)))
            connection.socket.session = keys
            return .success(peer)
        } catch {
            return .failure(Failure("\(error)"))
        }
    }

    /// Why a handshake failed, in words.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
