import Foundation
import PhalanxTesting
import Testing

/// Launching an elastic job with `mpirun --enable-recovery`: ranks come from OMPI_COMM_WORLD_*,
/// MPI itself is never called, and the survivors of a killed rank finish on their own.
@Suite(.serialized) struct ElasticLaunchTests {
    @Test func mpirunWithRecoveryKeepsTheSurvivorsTraining() throws {
        let port = try LoopbackPort.free()
        let directory = ElasticJob.temporaryDirectory()
        var arguments = ["--enable-recovery", "--oversubscribe", "-np", "3"]
        for variable in ["PHALANX_JOB_SECRET=\(UUID().uuidString)", "PHALANX_MASTER_PORT=\(port)", "OPENBLAS_NUM_THREADS=1"] {
            arguments += ["-x", variable]
        }
        arguments += [WorkerProcesses.binaryDirectory.appendingPathComponent("DigitsMLP").path] + ElasticJob.baseArguments
        arguments += ["--steps", "60", "--save", "\(directory)/weights-{member}.safetensors", "--fault", "kill:1:20"]
        let launcher = try WorkerProcesses(executable: "/usr/bin/env", arguments: ["mpirun"] + arguments, count: 1) { _ in
            ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]
        }
        let output = launcher.wait(timeout: .seconds(90))[0]
        let done = output.events("done")
        // mpirun reports 0 whatever happened with --enable-recovery: the trainers' own lines tell.
        #expect(done.count == 2, "\(output.stdout.suffix(1500)) \(output.stderr.suffix(1500))")
        #expect(Set(done.compactMap { $0["member"] as? Int }) == [0, 2])
        #expect(done.allSatisfy { $0["steps"] as? Int == 60 && $0["world_size"] as? Int == 2 })
        #expect(Set(done.compactMap { $0["params_hash"] as? String }).count == 1)
        #expect(output.events("change").count == 2)
    }
}
