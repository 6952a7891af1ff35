import Foundation
import Synchronization

/// A real single-node Slurm cluster for tests (Debian's `slurm-wlm` and `munge`): munged,
/// slurmctld and slurmd started by `scripts/slurm-cluster.sh` in a scratch directory of their
/// own (a generated munge key, a slurm.conf with `proctrack/linuxproc`, `task/none`, this
/// machine's CPU count and `OverSubscribe=FORCE`), stopped by PID when the test ends.
public final class SlurmCluster {
    /// The scratch directory (configuration, state, logs, PID files).
    public let directory: String
    /// The variables a client (`srun`, `sbatch`, `squeue`) needs: `SLURM_CONF`.
    public let environment: [String: String]
    private let script: String
    private let stopped = Atomic(false)

    /// Whether Slurm and munge are installed.
    public static var isInstalled: Bool {
        ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/srun"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A failure to start the cluster, with what its script printed.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// Starts the cluster of the repository at `repository` and returns once its node is idle.
    /// - Throws: `Failure` when Slurm is missing or the cluster does not come up (in 90 s).
    public init(repository: URL) throws {
        guard Self.isInstalled else { throw Failure(description: "Slurm is missing: apt-get install slurm-wlm munge") }
        // Short: munged's socket path must fit in a sockaddr_un.
        directory = "/tmp/phalanx-slurm-\(UUID().uuidString.prefix(8))"
        script = repository.appendingPathComponent("scripts/slurm-cluster.sh").path
        environment = ["SLURM_CONF": "\(directory)/etc/slurm.conf"]
        let start = try WorkerProcesses(executable: "/bin/bash", arguments: [script, "start", directory], count: 1) { _ in [:] }
            .wait(timeout: .seconds(90))[0]
        guard start.status == 0 else {
            stop()
            throw Failure(description: "the Slurm cluster did not start (status \(start.status)): \(start.stderr.suffix(3000))")
        }
    }

    /// The id of the running job named `name`, if one is running (from `squeue`).
    public func runningJob(named name: String) -> Int? {
        let output = try? WorkerProcesses(executable: "/usr/bin/squeue", arguments: ["-h", "-t", "R", "-n", name, "-o", "%i"], count: 1) { _ in
            self.environment
        }.wait(timeout: .seconds(20))[0]
        return output.flatMap { Int($0.stdout.split(separator: "\n").first ?? "") }
    }

    /// Cancels the jobs and stops the daemons by PID (SIGTERM, SIGKILL after 10 s); removes the
    /// scratch directory.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        _ = try? WorkerProcesses(executable: "/bin/bash", arguments: [script, "stop", directory], count: 1) { _ in [:] }
            .wait(timeout: .seconds(60))
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}
