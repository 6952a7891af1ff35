import Foundation
import PhalanxCheckpoint
import PhalanxElastic
import PhalanxTCP
import PhalanxTesting

/// An elastic DigitsMLP job on loopback: the test hosts the rendezvous (port 0) and the
/// membership witness (as phalanx-run does), the members
/// print JSON lines, write their final weights into a temporary directory and list their
/// addresses in a peers file for joiners.
final class ElasticJob {
    static let baseArguments = ["--elastic", "--json", "--hidden", "32", "--batch-size", "64", "--lr", "0.003"]

    let server: RendezvousServer
    let witness: WitnessServer
    let workers: WorkerProcesses
    let secret: String
    let directory: String
    let worldSize: Int

    /// With `hosts`, member `r` runs in namespace host `r % hosts.count` and the rendezvous and
    /// witness listen on the hosts' bridge.
    /// `beforeWorkers` runs with the rendezvous' port once it listens, before any member starts.
    init(worldSize: Int, steps: Int, extra: [String] = [], directory: String? = nil, hosts: NamespaceHosts? = nil,
         environment: [String: String] = [:], beforeWorkers: ((UInt16) -> Void)? = nil) throws {
        let secret = JobCredentials.randomSecret()
        let credentials = JobCredentials(jobID: "elastic-test", secret: Array(secret.utf8))
        let host = hosts?.bridgeAddress ?? "127.0.0.1"
        server = try RendezvousServer(host: host, port: 0, worldSize: worldSize, credentials: credentials, timeout: .seconds(60))
        server.start()
        witness = try WitnessServer(host: host, credentials: credentials)
        witness.start()
        let witnessAddress = witness.environmentValue
        let directory = directory ?? ElasticJob.temporaryDirectory()
        self.directory = directory
        self.secret = secret
        self.worldSize = worldSize
        let port = server.port
        beforeWorkers?(port)
        let arguments = ElasticJob.baseArguments + ["--steps", "\(steps)", "--save", "\(directory)/weights-{member}.safetensors"] + extra
        let trainer = WorkerProcesses.binaryDirectory.appendingPathComponent("DigitsMLP").path
        let launch = hosts == nil ? (executable: trainer, arguments: arguments) : NamespaceHosts.inNamespace(trainer, arguments)
        workers = try WorkerProcesses(executable: launch.executable, arguments: launch.arguments, count: worldSize) { rank in
            ElasticJob.environment(rank: rank, worldSize: worldSize, port: port, secret: secret, directory: directory, witness: witnessAddress, master: host)
                .merging(hosts.map { $0.environment(on: rank % $0.count) } ?? [:]) { _, new in new }
                .merging(environment) { _, new in new }
        }
    }

    static func environment(rank: Int, worldSize: Int, port: UInt16, secret: String, directory: String, witness: String, master: String = "127.0.0.1") -> [String: String] {
        [
            "PHALANX_WITNESS": witness,
            "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "\(worldSize)", "PHALANX_MASTER_ADDR": master,
            "PHALANX_MASTER_PORT": "\(port)", "PHALANX_RENDEZVOUS_EXTERNAL": "1", "PHALANX_JOB_ID": "elastic-test",
            "PHALANX_JOB_SECRET": secret, "PHALANX_PEERS_FILE": "\(directory)/peers", "OPENBLAS_NUM_THREADS": "1",
        ]
    }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "phalanx-elastic-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Starts a process that joins this job through the peers file (with `secret`, or the job's).
    func joiner(steps: Int, secret: String? = nil, extra: [String] = []) throws -> WorkerProcesses {
        let arguments = ElasticJob.baseArguments + ["--steps", "\(steps)", "--save", "\(directory)/weights-{member}.safetensors"] + extra
        let port = server.port, worldSize = self.worldSize, directory = self.directory
        let key = secret ?? self.secret
        let witnessAddress = witness.environmentValue
        return try WorkerProcesses(executable: "DigitsMLP", arguments: arguments, count: 1) { _ in
            var variables = ElasticJob.environment(rank: 0, worldSize: worldSize, port: port, secret: key, directory: directory, witness: witnessAddress)
            variables["PHALANX_JOIN"] = "1"
            return variables
        }
    }

    /// The final weights member `id` wrote, flattened in name order.
    func weights(member id: Int) throws -> [Float] {
        try ElasticJob.weights(at: "\(directory)/weights-\(id).safetensors")
    }

    static func weights(at path: String) throws -> [Float] { try FinalWeights.load(at: path) }

    /// ‖a − b‖ / ‖b‖.
    static func relativeDifference(_ a: [Float], _ b: [Float]) -> Double { FinalWeights.relativeDifference(a, b) }
}

extension WorkerProcesses.Output {
    /// The JSON events of this process with `event == name`.
    func events(_ name: String) -> [[String: Any]] { jsonLines.filter { $0["event"] as? String == name } }

    /// The "done" event, if the process finished.
    var done: [String: Any]? { events("done").last }
}
