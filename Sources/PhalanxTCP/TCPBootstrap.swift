import Logging
import PhalanxCollectives

/// Starts a TCP ring from the launcher's environment: what a trainer calls first.
///
/// ```swift
/// let communicator = try TCPBootstrap.communicator()   // reads PHALANX_*/torchrun/mpirun/Slurm variables
/// try communicator.allReduce(model.store.gradients, op: .average)
/// ```
public enum TCPBootstrap {
    /// Builds the ring for `environment`. Rank 0 hosts the rendezvous on
    /// `masterAddress:masterPort` unless `PHALANX_RENDEZVOUS_EXTERNAL=1` says a launcher does;
    /// under torchrun the ranks meet in the agent's c10d store there instead.
    /// - Throws: `SocketError`, `HandshakeError`, `JobSecretError`, `LaunchEnvironment.InvalidVariable`.
    public static func communicator(
        environment: LaunchEnvironment? = nil, variables: [String: String] = LaunchEnvironment.processEnvironment(),
        timeout: Duration = .seconds(60), logger: Logger = Logger(label: "phalanx.tcp")
    ) throws -> RingCommunicator {
        let environment = try environment ?? LaunchEnvironment.detect(from: variables)
        let protection = try WireProtection.fromEnvironment(variables)
        let credentials = try JobCredentials.fromEnvironment(
            variables, addresses: [environment.masterAddress] + [variables["PHALANX_HOST"]].compactMap { $0 }, logger: logger)
        let server = try RendezvousServer.hostedByThisRank(environment, variables: variables, credentials: credentials, timeout: timeout, logger: logger)
        let transport = try TCPTransport.connect(
            rank: environment.rank, worldSize: environment.worldSize,
            server: PeerTable.Endpoint(host: environment.masterAddress, port: environment.masterPort),
            storePrefix: environment.agentStorePrefix, credentials: credentials, timeout: timeout, protection: protection, logger: logger)
        if let server, case let .failure(error) = server.wait() { throw error }
        return RingCommunicator(transport: transport)
    }
}
