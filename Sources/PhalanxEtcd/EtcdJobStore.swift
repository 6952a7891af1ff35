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
/// - `witness/g<incarnation>/<epoch>`: the membership witness' votes (`EtcdWitnessVotes`), per
///   incarnation, since every incarnation numbers its epochs from 1 again.
///
/// A host also fences itself: it counts its lease from the moment it last sent a renewal that
/// etcd granted, and stops answering once that lease may have run out (`holdsLease`), whether
/// or not it can reach etcd to find out.
public final class EtcdJobStore: @unchecked Sendable {
    /// The client.
    public let client: EtcdClient
    /// The job's prefix, ending in "/".
    public let prefix: String
    /// The agents' lease, in seconds.
    public let ttl: Int
    private let logger: Logger
    /// Held across a whole renewal (so that two threads never take two leases).
    private let renewal = NSLock()
    // Guarded by `lock`.
    private let lock = NSLock()
    private var lease: Int64?
    // When the last granted renewal (or the grant) was sent: the lease lasts `ttl` from then at least.
    private var renewedAt: ContinuousClock.Instant?
    // The revision that created `rendezvous` while this agent holds it.
    private var hosting: Int64?

    /// The keys of job `jobID` in the cluster `client` talks to.
    public init(client: EtcdClient, jobID: String, ttl: Int = 6, logger: Logger = Logger(label: "phalanx.etcd")) {
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
        renewal.lock()
        defer { renewal.unlock() }
        lock.lock()
        let current = lease
        lock.unlock()
        let sent = ContinuousClock.now
        if let current, try client.keepAlive(current) {
            lock.lock()
            renewedAt = sent
            lock.unlock()
            return true
        }
        let fresh = try client.grantLease(ttl: ttl)
        lock.lock()
        lease = fresh
        renewedAt = sent
        hosting = nil
        lock.unlock()
        try client.put("\(agentsPrefix)\(node)", Array(node.utf8), lease: fresh)
        return current == nil
    }

    /// Whether this agent's lease surely still runs: less than `ttl` minus a margin of 1.5 s
    /// since the last renewal etcd granted was sent. A host that cannot say so stops answering.
    public var holdsLease: Bool {
        lock.lock()
        defer { lock.unlock() }
        guard lease != nil, let renewedAt else { return false }
        return ContinuousClock.now - renewedAt < .seconds(ttl) - .milliseconds(1500)
    }

    /// The address ("host:port") of the agent that hosts the rendezvous now, if any.
    public func rendezvousAddress() throws -> String? {
        try client.get(rendezvousKey).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Tries to become the rendezvous' host at `address` (unique to this attempt): succeeds
    /// only if nobody hosts it. An answer lost on the way (the transaction went through, the
    /// client asked another member again and that one refused) is recognised by the address.
    /// - Throws: `EtcdError`, and `EtcdError.badAnswer` when this agent is not registered.
    public func campaign(address: String) throws -> Bool {
        lock.lock()
        let current = lease
        lock.unlock()
        guard let current else { throw EtcdError.badAnswer(endpoint: "", detail: "campaign before the agent registered") }
        var created: Int64?
        if let result = try? client.put(rendezvousKey, Array(address.utf8), lease: current, if: [.createRevision(rendezvousKey, 0)]), result.done {
            created = result.revision
        } else if let entry = try client.get(rendezvousKey), entry.value == Array(address.utf8) {
            created = entry.createRevision
        }
        guard let created else { return false }
        lock.lock()
        hosting = created
        lock.unlock()
        return true
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

    /// Drops this agent's lease (its registration and, if it hosts it, the rendezvous key); the
    /// next `renew` registers it again.
    public func resign() {
        renewal.lock()
        defer { renewal.unlock() }
        lock.lock()
        let current = lease
        lease = nil
        renewedAt = nil
        hosting = nil
        lock.unlock()
        if let current { try? client.revoke(current) }
    }

    /// Votes of the job's membership witness for incarnation `generation`, kept in etcd.
    public func witnessVotes(generation: Int) -> EtcdWitnessVotes {
        EtcdWitnessVotes(client: client, prefix: "\(prefix)witness/g\(generation)/", logger: logger)
    }
}
