import Crypto
import Foundation

/// The rank-table exchange through torchrun's c10d store, in place of `RendezvousServer`:
/// nobody hosts anything, so nothing binds torchrun's `MASTER_PORT`.
///
/// torchrun keeps one store for the whole job, across restarts, and its restart count is not the
/// same on every node (a node restarts its workers when another node's worker failed without
/// counting a restart of its own). So the keys cannot name the round; entries of an earlier
/// round may still be there when a rank arrives. The exchange converges on the current round's
/// table instead:
///
/// 1. each rank sets `<prefix>rank_<r>` to "worldSize host port nonce" (a fresh nonce);
/// 2. once every rank has an entry for this world size, it reads the table and sets
///    `<prefix>ack_<r>` to the table's SHA-256;
/// 3. it is done when every rank acknowledged the same table; when an acknowledgement differs,
///    it reads the table again, and acknowledges anew if the table changed.
///
/// An entry left by an earlier round carries an old nonce, which no current rank's table can
/// hold once that rank set its own entry: the acknowledgements agree only on the current round's
/// table.
enum StoreRendezvous {
    /// Publishes `endpoint` as rank `rank`'s and returns every rank's endpoint.
    /// - Throws: `SocketError` naming the store and the ranks missing at the deadline.
    static func exchange(
        _ store: TorchStoreClient, prefix: String, rank: Int, worldSize: Int, endpoint: PeerTable.Endpoint, deadline: Deadline
    ) throws -> PeerTable {
        let entries = (0..<worldSize).map { "\(prefix)rank_\($0)" }
        let acknowledgements = (0..<worldSize).map { "\(prefix)ack_\($0)" }
        let nonce = JobCredentials.randomSecret(byteCount: 8)
        // Each request has a few seconds of its own: the store answers at once unless it is gone.
        let request = { Deadline(after: .seconds(5)) }
        try store.set(entries[rank], Array("\(worldSize) \(endpoint.host) \(endpoint.port) \(nonce)".utf8), deadline: request())
        var backoff = Backoff(cap: .milliseconds(200))
        var acknowledged: String?
        while true {
            let table = try read(entries, store, worldSize: worldSize, deadline: request())
            if let table {
                let digest = SHA256.hash(data: Data(table.text.utf8)).map { String(format: "%02x", $0) }.joined()
                if digest != acknowledged {
                    try store.set(acknowledgements[rank], Array(digest.utf8), deadline: request())
                    acknowledged = digest
                    backoff.reset()
                }
                if try store.check(acknowledgements, deadline: request()),
                   try acknowledgements.allSatisfy({ String(decoding: try store.get($0, deadline: request()), as: UTF8.self) == digest }) {
                    return table.peers
                }
            }
            guard !deadline.hasPassed else {
                let missing = try entries.indices.filter { index in
                    guard try store.check([entries[index]], deadline: request()) else { return true }
                    return entry(try store.get(entries[index], deadline: request()), worldSize: worldSize) == nil
                }
                let reason = missing.isEmpty
                    ? "timed out: the ranks of \(worldSize) did not agree on one table in torchrun's store under \(prefix)"
                    : "timed out: ranks \(missing) of \(worldSize) never registered in torchrun's store under \(prefix)"
                throw SocketError("rendezvous", endpoint: store.endpoint, reason: reason)
            }
            backoff.sleep(before: deadline)
        }
    }

    /// The table when every rank has an entry for `worldSize` (nil otherwise), and its text.
    private static func read(
        _ entries: [String], _ store: TorchStoreClient, worldSize: Int, deadline: Deadline
    ) throws -> (peers: PeerTable, text: String)? {
        guard try store.check(entries, deadline: deadline) else { return nil }
        var endpoints: [PeerTable.Endpoint] = [], text = ""
        for key in entries {
            let value = try store.get(key, deadline: deadline)
            guard let endpoint = entry(value, worldSize: worldSize) else { return nil }
            endpoints.append(endpoint)
            text += String(decoding: value, as: UTF8.self) + "\n"
        }
        return (PeerTable(endpoints: endpoints), text)
    }

    /// One rank's entry, when it is "worldSize host port nonce" for this world size (an entry
    /// of another world size, or garbage, counts as not registered yet).
    private static func entry(_ value: [UInt8], worldSize: Int) -> PeerTable.Endpoint? {
        let fields = String(decoding: value, as: UTF8.self).split(separator: " ")
        guard fields.count == 4, Int(fields[0]) == worldSize, let port = UInt16(fields[2]), !fields[1].isEmpty else { return nil }
        return PeerTable.Endpoint(host: String(fields[1]), port: port)
    }
}
