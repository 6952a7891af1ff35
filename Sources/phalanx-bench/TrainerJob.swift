import ArgumentParser
import Foundation
import PhalanxTesting

/// One run of an example trainer for a benchmark: alone, on our TCP ring on loopback, or under
/// `mpirun` (Open MPI's collectives), one OpenBLAS thread per rank.
enum TrainerJob {
    /// Runs `binary` with `arguments` on `p` ranks over `backend` ("single", "tcp" or "mpi")
    /// and returns every rank's `done` event (the trainer's `--json` output).
    /// - Throws: `ValidationError` naming `label` unless every rank finished with a rate.
    static func doneEvents(binary: String, arguments: [String], ranks p: Int, backend: String, label: String, timeout: Duration = .seconds(600)) throws -> [[String: Any]] {
        let outputs: [WorkerProcesses.Output]
        switch backend {
        case "mpi":
            outputs = try WorkerProcesses(
                executable: "/usr/bin/env", arguments: ["mpirun", "--oversubscribe", "-np", "\(p)", "-x", "OPENBLAS_NUM_THREADS=1", binary] + arguments, count: 1
            ) { _ in ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"] }.wait(timeout: timeout)
        case "tcp":
            let (job, servers) = try LoopbackJob.start(ranks: p, arguments: arguments + ["--backend", "tcp"], executable: binary, extra: ["OPENBLAS_NUM_THREADS": "1"])
            outputs = withExtendedLifetime(servers) { job.wait(timeout: timeout) }
        default:
            outputs = try WorkerProcesses(executable: binary, arguments: arguments, count: 1) { _ in ["OPENBLAS_NUM_THREADS": "1"] }.wait(timeout: timeout)
        }
        let done = outputs.flatMap(\.jsonLines).filter { $0["event"] as? String == "done" }
        guard done.count == p, done.allSatisfy({ $0["samples_per_s"] is Double }) else {
            throw ValidationError("\(label) at \(p) ranks (\(backend)) did not finish: \(outputs.map { $0.stderr.suffix(400) })")
        }
        return done
    }
}
