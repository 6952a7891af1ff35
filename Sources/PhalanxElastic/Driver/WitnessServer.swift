import Foundation
import Logging
import PhalanxTCP

/// Hosts a `WitnessAcceptor` on its own authenticated listener: the tie-breaking vote of an
/// elastic job's even memberships. Launchers (phalanx-run, a test harness) start one and give
/// its address to the workers as `PHALANX_WITNESS=host:port`.
///
/// While it is down, memberships of an even size cannot lose half of their members (the
/// other half cannot tell a partition from a death); everything else works without it.
/// With `EtcdWitnessVotes` its votes live in etcd: witness servers on several nodes are then
/// one acceptor, and none of them is a single point of failure.
public final class WitnessServer: @unchecked Sendable {
    /// Where members reach the witness.
    public let address: MemberAddress
    private let channel: MessageChannel
    private let votes: any WitnessVoting

    /// Listens on `host` at a free port and casts its votes with `votes`.
    /// - Throws: `SocketError` when the address cannot be bound.
    public init(host: String, credentials: JobCredentials, votes: any WitnessVoting = MemoryWitnessVotes(),
                logger: Logger = Logger(label: "phalanx.witness")) throws {
        self.votes = votes
        let node = try MemberNode(host: host, credentials: credentials, logger: logger)
        address = node.address(id: MembershipCore.witnessID)
        channel = MessageChannel(node: node, logger: logger, handshakeTimeout: .milliseconds(500))
        channel.id = MembershipCore.witnessID
    }

    deinit { channel.close() }

    /// Starts answering votes.
    public func start() {
        channel.start { [weak self] message, sender in
            guard let self else { return }
            let answers = self.votes.vote(on: message, from: sender)
            for case let .send(answer, address) in answers { self.channel.send(answer, to: address) }
        }
    }

    /// Stops the listener.
    public func stop() { channel.close() }

    /// The value for `PHALANX_WITNESS`.
    public var environmentValue: String { "\(address.host):\(address.port)" }
}
