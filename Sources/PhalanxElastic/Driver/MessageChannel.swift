import Foundation
import Logging
import PhalanxTCP

/// A membership message with the listening address of the process that sent it (answers go
/// there, on a connection of their own).
struct ControlEnvelope: Codable, Sendable {
    var from: MemberAddress
    var message: MembershipMessage
}

/// Carries `MembershipMessage`s between processes over `MemberNode`'s authenticated control
/// connections: one connection per message, acknowledged at once by the receiver, so no
/// sender ever waits for the receiver's protocol to act.
///
/// Sends to one destination go out in order on a serial queue of their own: a hung or
/// unreachable process delays only the messages addressed to it (each attempt is bounded by
/// the handshake timeout, and messages older than `staleAfter` are dropped).
final class MessageChannel: @unchecked Sendable {
    let node: MemberNode
    let logger: Logger
    let handshakeTimeout: Duration
    let staleAfter: Duration
    // Guarded by `lock`: the queues by destination, and the id this process sends as.
    private let lock = NSLock()
    private var queues: [String: DispatchQueue] = [:]
    private var senderID = MemberNode.newcomerID
    private var closed = false
    private var failures: [String: String] = [:]
    private var delivered: Set<String> = []
    private var failingSince: [String: Date] = [:]

    init(node: MemberNode, logger: Logger, handshakeTimeout: Duration, staleAfter: Duration = .seconds(5)) {
        self.node = node
        self.logger = logger
        self.handshakeTimeout = handshakeTimeout
        self.staleAfter = staleAfter
    }

    /// The id this process gives in its handshakes (a newcomer until admitted).
    var id: Int {
        get { lock.lock(); defer { lock.unlock() }; return senderID }
        set { lock.lock(); senderID = newValue; lock.unlock() }
    }

    /// Starts the listener; `receive` is called on the connection's thread with each message.
    func start(_ receive: @escaping @Sendable (MembershipMessage, MemberAddress) -> Void) {
        let logger = self.logger
        node.start { request in
            guard let envelope = try? JSONDecoder().decode(ControlEnvelope.self, from: Data(request.payload)) else {
                logger.warning("dropped an undecodable control message from \(request.endpoint)")
                request.close()
                return
            }
            request.reply([])
            receive(envelope.message, envelope.from)
        }
    }

    /// Sends `message` to the process listening at `address` (asynchronously, best effort).
    func send(_ message: MembershipMessage, to address: MemberAddress) {
        let envelope = ControlEnvelope(from: node.address(id: id), message: message)
        guard let payload = try? Array(JSONEncoder().encode(envelope)) else { return }
        let key = "\(address.host):\(address.port)"
        lock.lock()
        guard !closed else { lock.unlock(); return }
        let queue = queues[key] ?? DispatchQueue(label: "phalanx.control.\(key)")
        queues[key] = queue
        let sender = senderID
        lock.unlock()
        let queued = ContinuousClock.now
        // Any process may listen at an address now (a member that rejoined under a new id):
        // the protocol checks who answers, so the handshake does not.
        let target = MemberAddress(id: MemberNode.newcomerID, host: address.host, port: address.port)
        queue.async { [self] in
            guard ContinuousClock.now - queued < staleAfter else { return }
            do {
                _ = try node.request(payload, to: target, id: sender, epoch: 0, timeout: handshakeTimeout * 4, handshakeTimeout: handshakeTimeout)
                record(key, failure: nil, attempted: false)
            } catch {
                logger.debug("\(message.kind) to \(key) not delivered: \(error)")
                // A refusal by the handshake (another job, a wrong secret) says that nobody
                // there will ever answer; a closed port (the process is gone) counts once it
                // stays closed for a while (`undeliverable`).
                let refusedByHandshake = "\(error)".contains("refused us") || error is HandshakeError
                let portClosed = (error as? SocketError)?.errno == ECONNREFUSED
                record(key, failure: refusedByHandshake || portClosed ? "\(error)" : nil, attempted: true, permanent: refusedByHandshake)
            }
        }
    }

    private func record(_ key: String, failure: String?, attempted: Bool, permanent: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        if attempted, failure == nil { return }
        if let failure {
            failures[key] = failure
            if permanent { failingSince[key] = .distantPast } else if failingSince[key] == nil { failingSince[key] = Date() }
            delivered.remove(key)
        } else {
            failures[key] = nil
            failingSince[key] = nil
            delivered.insert(key)
        }
    }

    /// The reasons the last message to each of `addresses` failed, when the last message to
    /// every one of them failed (nil otherwise): nobody there answers this process now.
    /// A closed port counts once it has refused for `closedFor` (the process is gone, not
    /// restarting its listener).
    func undeliverable(_ addresses: [MemberAddress], closedFor: TimeInterval = 3) -> [String]? {
        lock.lock()
        defer { lock.unlock() }
        let keys = addresses.map { "\($0.host):\($0.port)" }
        let now = Date()
        guard !keys.isEmpty, keys.allSatisfy({ key in
            failures[key] != nil && !delivered.contains(key) && failingSince[key].map { now.timeIntervalSince($0) >= closedFor } == true
        }) else { return nil }
        return keys.map { "\($0) (\(failures[$0] ?? ""))" }
    }

    /// Stops sending (queued messages are dropped) and closes the listener.
    func close() {
        lock.lock()
        closed = true
        lock.unlock()
        node.close()
    }
}
