import Foundation
import Logging
import PhalanxElastic
import PhalanxTCP

/// The membership witness' votes kept in etcd: one key per epoch (`<prefix><epoch>`)
/// holding what was promised and accepted for the change out of it, and every vote a
/// compare-and-swap on that key's revision. Witness servers on several nodes that share these
/// votes are one acceptor of the membership agreement: a vote survives the process that cast
/// it, two servers can never vote differently on the same ballot, and with a 3-member etcd
/// cluster no single machine's loss stops the witness.
///
/// When etcd cannot be reached in time the witness does not vote (the members' round times out
/// and tries again, as with any acceptor that does not answer).
/// Sendable as it stands: only `let`s (the client guards its own state).
public final class EtcdWitnessVotes: WitnessVoting, @unchecked Sendable {
    private let client: EtcdClient
    private let prefix: String
    private let logger: Logger
    /// Attempts when other witness servers change the same epoch's votes concurrently.
    static let attempts = 8

    /// How long one vote may take, all attempts together (an acceptor that answers late is
    /// no better than one that does not answer).
    static let deadline: Duration = .seconds(3)

    /// Votes under `prefix` (one per incarnation of a job: `EtcdJobStore.witnessVotes`) in the
    /// cluster `client` talks to.
    public init(client: EtcdClient, prefix: String, logger: Logger = Logger(label: "phalanx.witness")) {
        self.client = client
        self.prefix = prefix
        self.logger = logger
    }

    /// The key of `epoch`'s votes (zero-padded so that the keys sort by epoch).
    func key(_ epoch: UInt64) -> String {
        let digits = String(epoch)
        return "\(prefix)\(String(repeating: "0", count: max(0, 20 - digits.count)))\(digits)"
    }

    /// Reads the epoch's votes, votes as a `WitnessAcceptor` holding them would, and stores
    /// the new votes only if nobody changed them since they were read.
    public func vote(on message: MembershipMessage, from sender: MemberAddress) -> [MembershipAction] {
        guard let epoch = message.epoch else { return [] }
        let deadline = ContinuousClock.now + Self.deadline
        for _ in 0..<Self.attempts where ContinuousClock.now < deadline {
            do {
                let entry = try client.get(key(epoch))
                let stored = try entry.map { try JSONDecoder().decode(WitnessAcceptor.EpochVotes.self, from: Data($0.value)) }
                    ?? WitnessAcceptor.EpochVotes()
                var acceptor = WitnessAcceptor(epoch: epoch, votes: stored)
                let answers = acceptor.handle(message, from: sender)
                let updated = acceptor.votes(epoch: epoch)
                if updated == stored { return answers }
                let value = Array(try JSONEncoder().encode(updated))
                if try client.put(key(epoch), value, if: [.modRevision(key(epoch), entry?.modRevision ?? 0)]).done { return answers }
            } catch {
                logger.warning("witness: no vote on epoch \(epoch) for \(sender.host):\(sender.port): \(error)")
                return []
            }
        }
        logger.warning("witness: no vote on epoch \(epoch) within \(Self.deadline) (\(Self.attempts) attempts at most): its votes kept changing")
        return []
    }
}
