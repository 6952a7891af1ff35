import Foundation
import Logging
import PhalanxTCP

/// Hosts a `NodeRendezvous` (the `builtin` backend of `phalanx-run --nnodes`) on the job's
/// rendezvous endpoint, over the job's authenticated control connections: node agents poll it
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
    private var incarnations: [Int: (rendezvous: RendezvousServer, witness: WitnessServer)] = [:]

    /// Listens on `host:port` for the agents of a job of `minNodes ... maxNodes` nodes.
    /// - Throws: `SocketError` when the endpoint cannot be bound.
    public init(host: String, port: UInt16, credentials: JobCredentials, rendezvous: NodeRendezvous,
                logger: Logger = Logger(label: "phalanx.node-rendezvous")) throws {
        node = try MemberNode(host: host, port: port, credentials: credentials, logger: logger)
        node.memberID = Self.memberID
        address = node.address(id: Self.memberID)
        self.host = host
        self.credentials = credentials
        self.state = rendezvous
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
            let answer = self.handle(report)
            request.reply((try? Array(JSONEncoder().encode(answer))) ?? [])
        }
    }

    /// How many agents other than `node` hold a current lease.
    public func liveNodes(excluding node: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return state.liveNodes(now: .now).filter { $0 != node }.count
    }

    /// Stops answering (the incarnations' worker rendezvous and witnesses too).
    public func stop() {
        node.close()
        lock.lock()
        let witnesses = incarnations.values.map(\.witness)
        lock.unlock()
        for witness in witnesses { witness.stop() }
    }

    func handle(_ report: AgentReport) -> AgentAssignment {
        lock.lock()
        defer { lock.unlock() }
        var (answer, formed) = state.handle(report, now: .now)
        if let formed {
            do {
                let rendezvous = try RendezvousServer(host: host, port: 0, worldSize: formed.worldSize, credentials: credentials,
                                                      timeout: .seconds(300), logger: logger)
                rendezvous.start()
                let witness = try WitnessServer(host: host, credentials: credentials, logger: logger)
                witness.start()
                incarnations[formed.generation] = (rendezvous, witness)
                logger.info("node rendezvous: incarnation \(formed.generation) formed with \(formed.worldSize) workers")
            } catch {
                logger.error("node rendezvous: could not serve incarnation \(formed.generation): \(error)")
            }
        }
        if let incarnation = incarnations[answer.generation] {
            answer.rendezvousHost = host
            answer.rendezvousPort = incarnation.rendezvous.port
            answer.witness = incarnation.witness.environmentValue
        } else if answer.role == .start {
            answer.role = .wait
            answer.reason = "the worker rendezvous of incarnation \(answer.generation) could not be served"
        }
        return answer
    }
}

/// An agent's side of the `builtin` node rendezvous. Sendable as it stands: only `let`s, and
/// `MemberNode.request` may be called from any thread.
public final class NodeRendezvousClient: @unchecked Sendable {
    private let node: MemberNode
    private let server: MemberAddress

    /// Talks to the rendezvous at `host:port` from `localHost`.
    /// - Throws: `SocketError` when no local port can be bound.
    public init(host: String, port: UInt16, localHost: String, credentials: JobCredentials, logger: Logger = Logger(label: "phalanx.agent")) throws {
        node = try MemberNode(host: localHost, credentials: credentials, logger: logger)
        server = MemberAddress(id: NodeRendezvousServer.memberID, host: host, port: port)
    }

    /// Sends `report` and returns the answer, within `timeout`.
    /// - Throws: `SocketError`/`HandshakeError` when the rendezvous cannot be reached,
    ///   `ElasticError.protocolViolation` for an answer that is not an assignment.
    public func poll(_ report: AgentReport, timeout: Duration = .seconds(1)) throws -> AgentAssignment {
        let reply = try node.request(Array(JSONEncoder().encode(report)), to: server, id: MemberNode.newcomerID, epoch: 0, timeout: timeout)
        do { return try JSONDecoder().decode(AgentAssignment.self, from: Data(reply)) } catch {
            throw ElasticError.protocolViolation("the node rendezvous at \(server.host):\(server.port) answered something that is not an assignment: \(error)")
        }
    }

    /// Closes the local port.
    public func close() { node.close() }
}
