import Foundation
import PhalanxTesting
import Testing

/// The collectives under `mpirun`: Open MPI's own (`--backend mpi`) and our ring over MPI
/// point-to-point (`--backend mpi-ring`), each through the same conformance suite.
@Suite(.serialized) struct MPICollectiveTests {
    static func mpirun(_ ranks: Int, _ arguments: [String], recovery: Bool = false) throws -> WorkerProcesses.Output {
        let check = WorkerProcesses.binaryDirectory.appendingPathComponent("phalanx-check").path
        var mpiArguments = ["--oversubscribe", "-np", "\(ranks)"]
        if recovery { mpiArguments.insert("--enable-recovery", at: 0) }
        let job = try WorkerProcesses(executable: "/usr/bin/mpirun", arguments: mpiArguments + [check] + arguments, count: 1) { _ in
            ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]
        }
        return job.wait(timeout: .seconds(300))[0]
    }

    @Test(arguments: ["mpi", "mpi-ring"], 1...6)
    func conformanceUnderMPIRun(backend: String, ranks: Int) throws {
        let output = try Self.mpirun(ranks, ["conformance", "--backend", backend, "--timeout-ms", "20000"])
        let results = output.jsonLines.filter { $0["rank"] != nil }
        #expect(output.status == 0, "\(output.stdout.suffix(800)) \(output.stderr.suffix(800))")
        #expect(results.count == ranks)
        #expect(Set(results.compactMap { $0["rank"] as? Int }) == Set(0..<ranks))
        for result in results {
            #expect(result["ok"] as? Bool == true, "\(result)")
            #expect((result["failures"] as? [String])?.isEmpty == true)
        }
    }

    @Test(arguments: ["mpi", "mpi-ring"])
    func repeatedAllReducesAreBitIdentical(backend: String) throws {
        let output = try Self.mpirun(3, ["checksum", "--backend", backend, "--timeout-ms", "20000"])
        let sums = output.jsonLines.compactMap { $0["checksum"] as? String }
        #expect(sums.count == 3 && Set(sums).count == 1, "\(output.stdout)")
    }

    @Test(arguments: ["mpi", "mpi-ring"])
    func mismatchedCountsFailEveryRankWithoutHanging(backend: String) throws {
        let started = ContinuousClock.now
        let output = try Self.mpirun(3, ["mismatch", "--backend", backend], recovery: true)
        #expect(ContinuousClock.now - started < .seconds(30))
        let results = output.jsonLines.filter { $0["rank"] != nil }
        #expect(results.count == 3, "\(output.stdout)")
        #expect(results.allSatisfy { $0["ok"] as? Bool == false })
        #expect(results.contains { $0["code"] as? String == "sizeMismatch" })
    }
}
