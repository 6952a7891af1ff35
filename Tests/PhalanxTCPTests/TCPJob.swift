import Foundation
import PhalanxTesting
@testable import PhalanxTCP

/// A job of `phalanx-check` workers on loopback whose rendezvous the test itself hosts (port 0,
/// so parallel tests never collide).
struct TCPJob {
    let server: RendezvousServer
    let workers: WorkerProcesses
    let secret: String

    init(worldSize: Int, arguments: [String], secret: String = JobCredentials.randomSecret(), environment: @escaping (Int) -> [String: String] = { _ in [:] },
         beforeWorkers: (UInt16) throws -> Void = { _ in }) throws {
        let credentials = JobCredentials(jobID: "test-job", secret: Array(secret.utf8))
        server = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: worldSize, credentials: credentials, timeout: .seconds(60))
        server.start()
        try beforeWorkers(server.port)
        let port = server.port
        self.secret = secret
        workers = try WorkerProcesses(executable: "phalanx-check", arguments: arguments, count: worldSize) { rank in
            [
                "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "\(worldSize)", "PHALANX_MASTER_ADDR": "127.0.0.1",
                "PHALANX_MASTER_PORT": "\(port)", "PHALANX_RENDEZVOUS_EXTERNAL": "1", "PHALANX_JOB_ID": "test-job",
                "PHALANX_JOB_SECRET": secret,
            ].merging(environment(rank)) { _, new in new }
        }
    }
}
