import Foundation
import Phalanx
import PhalanxElastic
import PhalanxTesting

/// Jobs of this executable's worker subcommands on loopback, with the rendezvous hosted here.
enum LoopbackJob {
    /// This executable: the workers are more copies of it.
    static var executable: String { Bundle.main.executablePath ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path }

    /// Runs `p` workers (`arguments` start with the subcommand) with PHALANX_* variables and a
    /// fresh secret, and returns their outputs. With `secondRing`, a second rendezvous is hosted
    /// and its port given in PHALANX_SECOND_MASTER_PORT (for two rings in one job).
    static func run(ranks p: Int, arguments: [String], secondRing: Bool = false, timeout: Duration = .seconds(600)) throws -> [WorkerProcesses.Output] {
        let (job, servers) = try start(ranks: p, arguments: arguments, secondRing: secondRing)
        return withExtendedLifetime(servers) { job.wait(timeout: timeout) }
    }

    /// Starts the job and returns at once (keep the servers alive until it ends): the
    /// rendezvous (two with `secondRing`) and the membership witness, as a launcher hosts them.
    static func start(
        ranks p: Int, arguments: [String], secondRing: Bool = false, executable: String = LoopbackJob.executable, extra: [String: String] = [:]
    ) throws -> (WorkerProcesses, [AnyObject]) {
        let secret = JobCredentials.randomSecret()
        let credentials = JobCredentials(jobID: "bench", secret: Array(secret.utf8))
        let servers = try (0..<(secondRing ? 2 : 1)).map { _ in
            try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: p, credentials: credentials)
        }
        servers.forEach { $0.start() }
        let witness = try WitnessServer(host: "127.0.0.1", credentials: credentials)
        witness.start()
        let witnessAddress = witness.environmentValue
        let ports = servers.map(\.port)
        let job = try WorkerProcesses(executable: executable, arguments: arguments, count: p) { rank in
            [
                "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "\(p)", "PHALANX_MASTER_ADDR": "127.0.0.1",
                "PHALANX_MASTER_PORT": "\(ports[0])", "PHALANX_RENDEZVOUS_EXTERNAL": "1", "PHALANX_JOB_ID": "bench",
                "PHALANX_JOB_SECRET": secret, "PHALANX_SECOND_MASTER_PORT": "\(ports.last ?? 0)", "PHALANX_WITNESS": witnessAddress,
            ].merging(extra) { _, new in new }
        }
        return (job, servers + [witness])
    }
}
