import Foundation

/// The rank-table exchange through torchrun's c10d store, in place of `RendezvousServer`: every
/// rank sets `<prefix>rank_<r>` to "worldSize host port", waits until all ranks did, and reads
/// them. Nobody hosts anything, so nothing binds torchrun's `MASTER_PORT`.
enum StoreRendezvous {
    /// Publishes `endpoint` as rank `rank`'s and returns every rank's endpoint.
    /// - Throws: `SocketError` naming the store and the ranks missing at the deadline, or a
    ///   rank that registered for another world size.
    static func exchange(
        _ store: TorchStoreClient, prefix: String, rank: Int, worldSize: Int, endpoint: PeerTable.Endpoint, deadline: Deadline
    ) throws -> PeerTable {
        let keys = (0..<worldSize).map { "\(prefix)rank_\($0)" }
        try store.set(keys[rank], Array("\(worldSize) \(endpoint.host) \(endpoint.port)".utf8), deadline: deadline)
        // Polled with `check` rather than one server-side `wait`: at the deadline the missing
        // ranks can be named, and no wait is left pending in torchrun's store.
        var pause: Duration = .milliseconds(5)
        // Each request has a few seconds of its own: the store answers at once unless it is gone.
        let request = { Deadline(after: .seconds(5)) }
        while try !store.check(keys, deadline: request()) {
            guard !deadline.hasPassed else {
                let missing = try keys.indices.filter { try !store.check([keys[$0]], deadline: request()) }
                throw SocketError("rendezvous", endpoint: store.endpoint,
                                  reason: "timed out: ranks \(missing) of \(worldSize) never registered in torchrun's store under \(prefix)")
            }
            let nap = min(pause, deadline.instant - .now)
            if nap > .zero { Thread.sleep(forTimeInterval: Double(nap.components.seconds) + Double(nap.components.attoseconds) * 1e-18) }
            pause = min(pause * 2, .milliseconds(200))
        }
        var endpoints: [PeerTable.Endpoint] = []
        for (index, key) in keys.enumerated() {
            let text = String(decoding: try store.get(key, deadline: request()), as: UTF8.self)
            let fields = text.split(separator: " ")
            guard fields.count == 3, let size = Int(fields[0]), let port = UInt16(fields[2]) else {
                throw SocketError("rendezvous", endpoint: store.endpoint, reason: "rank \(index)'s entry '\(text.prefix(80))' is not 'worldSize host port'")
            }
            guard size == worldSize else {
                throw SocketError("rendezvous", endpoint: store.endpoint, reason: "rank \(index) registered for a job of \(size) ranks, this one has \(worldSize)")
            }
            endpoints.append(PeerTable.Endpoint(host: String(fields[1]), port: port))
        }
        return PeerTable(endpoints: endpoints)
    }
}
