import Foundation
import Logging
import PhalanxTCP

/// An agent's side of the node rendezvous. `MemberNode.request` may be called from any
/// thread; the rendezvous' address is guarded by a lock (with the `etcd` backend it moves to
/// whichever agent hosts the rendezvous now).
public final class NodeRendezvousClient: @unchecked Sendable {
    private let node: MemberNode
    // Guarded by `lock`.
    private let lock = NSLock()
    private var target: MemberAddress

    /// Talks to the rendezvous at `host:port` from `localHost`.
    /// - Throws: `SocketError` when no local port can be bound.
    public init(host: String, port: UInt16, localHost: String, credentials: JobCredentials, logger: Logger = Logger(label: "phalanx.agent")) throws {
        node = try MemberNode(host: localHost, credentials: credentials, logger: logger)
        target = MemberAddress(id: NodeRendezvousServer.memberID, host: host, port: port)
    }

    /// The rendezvous it polls.
    public var server: MemberAddress {
        lock.lock()
        defer { lock.unlock() }
        return target
    }

    /// Polls the rendezvous at `address` ("host:port") from now on; false (and no change) when
    /// `address` is not that.
    @discardableResult
    public func retarget(_ address: String) -> Bool {
        guard let parsed = MemberAddress(id: NodeRendezvousServer.memberID, parsing: address) else { return false }
        lock.lock()
        target = parsed
        lock.unlock()
        return true
    }

    /// Sends `report` and returns the answer, within `timeout`.
    /// - Throws: `SocketError`/`HandshakeError` when the rendezvous cannot be reached,
    ///   `ElasticError.protocolViolation` for an answer that is not an assignment.
    public func poll(_ report: AgentReport, timeout: Duration = .seconds(1)) throws -> AgentAssignment {
        let server = self.server
        let reply = try node.request(Array(JSONEncoder().encode(report)), to: server, id: MemberNode.newcomerID, epoch: 0, timeout: timeout)
        do { return try JSONDecoder().decode(AgentAssignment.self, from: Data(reply)) } catch {
            throw ElasticError.protocolViolation("the node rendezvous at \(server.host):\(server.port) answered something that is not an assignment: \(error)")
        }
    }

    /// Closes the local port.
    public func close() { node.close() }
}
