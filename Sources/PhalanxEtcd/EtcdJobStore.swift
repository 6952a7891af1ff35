import Foundation
import Logging
import PhalanxElastic

/// A multi-node job's keys in etcd (the `etcd` backend of `phalanx-run --nnodes`), under
/// `/phalanx/<job>/`:
/// - `agents/<node>`: one per live agent, attached to the agent's lease (`ttl` seconds, renewed
///   every second): an agent that dies or is cut off from etcd drops out when its lease ends;
/// - `rendezvous`: the address of the agent that hosts the node rendezvous now, attached to that
///   agent's lease; an agent becomes the host by creating it (a transaction that succeeds only
///   while the key does not exist), so there is one host at a time;
/// - `state`: the rendezvous' `NodeRendezvous.Snapshot` (running incarnation, member directory,
///   finished step), written only by a transaction that checks the writer still holds
///   `rendezvous`: a host that lost its lease (frozen, cut off) can no longer change the job,
///   and a new host starts from the newest state;
/// - `witness/<epoch>`: the membership witness' votes (`EtcdWitnessVotes`).
public final class EtcdJobStore: @unchecked Sendable {
    /// The client.
    public let client: EtcdClient
    /// The job's prefix, ending in "/".
    public let prefix: String
    /// The agents' lease, in seconds.
    public let ttl: Int
    private let logger: Logger
    // Guarded by `lock`.
    private let lock = NSLock()
    private var lease: Int64?
    // The revision that created `rendezvous` while this agent holds it.
    private var hosting: Int64?

    /// The keys of job `jobID` in the cluster `client` talks to.
    public init(client: EtcdClient, jobID: String, ttl: Int = 5, logger: Logger = Logger(label: "phalanx.etcd")) {
        self.client = client
        prefix = "/phalanx/\(jobID)/"
        self.ttl = ttl
        self.logger = logger
    }

    var rendezvousKey: String { "\(prefix)rendezvous" }
    var stateKey: String { "\(prefix)state" }
    var agentsPrefix: String { "\(prefix)agents/" }

    /// Keeps this agent registered as `node`: renews its lease, or, when it has none or it
    /// expired, takes a new one and registers again. Returns false when the lease had expired
    /// (this agent no longer hosts the rendezvous: its key went with the lease).
    /// - Throws: `EtcdError` when etcd cannot be reached.
    public func renew(node: String) throws -> Bool {
        lock.lock()
        let current = lease
        lock.unlock()
        if let current, try client.keepAlive(current) { return true }
        let fresh = try client.grantLease(ttl: ttl)
        try client.put("\(agentsPrefix)\(node)", Array(node.utf8), lease: fresh)
        lock.lock()
        lease = fresh
        hosting = nil
        lock.unlock()
        return current == nil
    }

    /// The address ("host:port") of the agent that hosts the rendezvous now, if any.
    public func rendezvousAddress() throws -> String? {
        try client.get(rendezvousKey).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Tries to become the rendezvous' host at `address`: succeeds only if nobody hosts it.
    /// - Throws: `EtcdError`, and `EtcdError.badAnswer` when this agent is not registered.
    public func campaign(address: String) throws -> Bool {
        lock.lock()
        let current = lease
        lock.unlock()
        guard let current else { throw EtcdError.badAnswer(endpoint: "", detail: "campaign before the agent registered") }
        let result = try client.put(rendezvousKey, Array(address.utf8), lease: current, if: [.createRevision(rendezvousKey, 0)])
        if result.done {
            lock.lock()
            hosting = result.revision
            lock.unlock()
        }
        return result.done
    }

    /// The newest rendezvous state stored.
    public func loadState() throws -> NodeRendezvous.Snapshot? {
        guard let entry = try client.get(stateKey) else { return nil }
        do { return try JSONDecoder().decode(NodeRendezvous.Snapshot.self, from: Data(entry.value)) } catch {
            throw EtcdError.badAnswer(endpoint: "", detail: "the job's state at \(stateKey) is not readable: \(error)")
        }
    }

    /// Stores `snapshot` if this agent still hosts the rendezvous; false otherwise (or when
    /// etcd cannot be reached: the caller stops hosting either way).
    public func keepState(_ snapshot: NodeRendezvous.Snapshot) -> Bool {
        lock.lock()
        let created = hosting
        lock.unlock()
        guard let created, let value = try? JSONEncoder().encode(snapshot) else { return false }
        do { return try client.put(stateKey, Array(value), if: [.createRevision(rendezvousKey, created)]).done } catch {
            logger.warning("etcd: could not store the job's state: \(error)")
            return false
        }
    }

    /// The agents registered now.
    public func registeredNodes() throws -> Set<String> {
        Set(try client.list(prefix: agentsPrefix).map { String($0.key.dropFirst(agentsPrefix.count)) })
    }

    /// Drops this agent's lease (its registration and, if it hosts it, the rendezvous key).
    public func resign() {
        lock.lock()
        let current = lease
        lease = nil
        hosting = nil
        lock.unlock()
        if let current { try? client.revoke(current) }
    }

    /// Votes of the job's membership witness, kept in etcd.
    public func witnessVotes() -> EtcdWitnessVotes { EtcdWitnessVotes(client: client, prefix: prefix, logger: logger) }
}
