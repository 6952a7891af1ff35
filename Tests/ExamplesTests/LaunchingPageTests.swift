import Foundation
import PhalanxTCP
import PhalanxTesting
import Testing

/// The commands of docs/launching.md, run as the page writes them, with the real launchers:
/// torchrun (PyPI's torch), a single-node Slurm cluster (Debian's slurm-wlm and munge) and
/// Open MPI's mpirun. Each test bounds its wait and stops what it started by PID.
@Suite(.serialized) struct LaunchingPageTests {
    static let rootEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OPENBLAS_NUM_THREADS": "1"]

    /// The same job under `phalanx-run`, for comparison: its members' final weights.
    static func phalanxRunWeights(workers: Int, in directory: String) throws -> [Float] {
        let output = try WorkerProcesses(
            executable: "phalanx-run",
            arguments: ["--nproc", "\(workers)", "--", WorkerProcesses.binaryDirectory.appendingPathComponent("DigitsMLP").path,
                        "--epochs", "5", "--save", "\(directory)/phalanx-run-\(workers)/weights-{member}.safetensors"],
            count: 1) { _ in rootEnvironment }.wait(timeout: .seconds(180))
        #expect(output[0].status == 0, "\(output[0].stdout.suffix(1000))\(output[0].stderr.suffix(1000))")
        return try FinalWeights.load(at: "\(directory)/phalanx-run-\(workers)/weights-0.safetensors")
    }

    /// Every member's weights in `directory/run` (`weights-{member}.safetensors`).
    static func weights(_ run: String, members: Int, in directory: String) throws -> [[Float]] {
        try (0..<members).map { try FinalWeights.load(at: "\(directory)/\(run)/weights-\($0).safetensors") }
    }

    /// The page and a fresh scratch directory for `body`, removed afterwards.
    static func withScratch(_ body: (LaunchingPage, String) throws -> Void) throws {
        let page = try LaunchingPage()
        let directory = try page.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(page, directory)
    }

    static func describe(_ output: WorkerProcesses.Output) -> String {
        "status \(output.status)\n--- stdout\n\(output.stdout.suffix(3000))\n--- stderr\n\(output.stderr.suffix(3000))"
    }

    @Test func everyCommandOnThePageIsRunByATest() throws {
        let page = try LaunchingPage()
        let lines = page.text.components(separatedBy: "\n")
        let marks = lines.compactMap { line -> String? in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("<!-- test: "), text.hasSuffix(" -->") else { return nil }
            return String(text.dropFirst("<!-- test: ".count).dropLast(" -->".count))
        }
        // Every shell block is marked (the line before it, or the one before a blank line).
        for (index, line) in lines.enumerated() where line.hasPrefix("```sh") {
            #expect(index > 0 && lines[index - 1].hasPrefix("<!-- test: "), "an unmarked command block at line \(index + 1)")
        }
        let tests = try String(contentsOfFile: #filePath, encoding: .utf8)
        for mark in marks {
            #expect(tests.contains("\"\(mark)\""), "no test runs the block '\(mark)'")
            #expect(throws: Never.self) { _ = try page.command(mark) }
        }
        #expect(marks.count >= 10, "\(marks)")
    }

    @Test func theSecretFileRecipeMakesAFileOnlyItsOwnerReads() throws {
        try Self.withScratch { page, directory in
            let output = try page.start("secret-file", in: directory, environment: ["HOME": directory]).finish(timeout: .seconds(30))
            #expect(output.status == 0, "\(Self.describe(output))")
            let path = "\(directory)/.phalanx/secret"
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
            #expect(mode == 0o600, "mode \(String(mode, radix: 8))")
            // A trainer reaching beyond loopback takes it.
            let credentials = try JobCredentials.fromEnvironment(["PHALANX_JOB_SECRET_FILE": path, "PHALANX_JOB_ID": "j"], addresses: ["10.1.2.3"])
            #expect(credentials.jobID == "j")
        }
    }

    @Test func torchrunStandaloneTrainsAsPhalanxRunDoes() throws {
        try Self.withScratch { page, directory in
            let output = try page.start("torchrun-standalone", in: directory, environment: Self.rootEnvironment).finish(timeout: .seconds(180))
            #expect(output.status == 0, "\(Self.describe(output))")
            let torchrun = try Self.weights("torchrun-2", members: 2, in: directory)
            let reference = try Self.phalanxRunWeights(workers: 2, in: directory)
            #expect(torchrun[0] == reference && torchrun[1] == reference, "torchrun's weights differ from phalanx-run's")
        }
    }

    @Test func torchrunOnTwoNodesTrainsAsPhalanxRunDoes() throws {
        try Self.withScratch { page, directory in
            let port = try LoopbackPort.free()
            let nodes = try (0..<2).map { node in
                try page.start("torchrun-two-nodes", in: directory, replacing: ["node0": "127.0.0.1", "29510": "\(port)"],
                               environment: Self.rootEnvironment.merging(["NODE_RANK": "\(node)"]) { _, new in new })
            }
            for output in nodes.map({ $0.finish(timeout: .seconds(180)) }) { #expect(output.status == 0, "\(Self.describe(output))") }
            let torchrun = try Self.weights("torchrun-4", members: 4, in: directory)
            let reference = try Self.phalanxRunWeights(workers: 4, in: directory)
            #expect(torchrun.allSatisfy { $0 == reference }, "torchrun's weights differ from phalanx-run's")
        }
    }

    @Test func torchrunRestartsFromTheCheckpointAfterAKilledWorker() throws {
        try Self.withScratch { page, directory in
            let port = try LoopbackPort.free()
            let output = try page.start("torchrun-elastic", in: directory, replacing: ["node0": "127.0.0.1", "29400": "\(port)"],
                                        environment: Self.rootEnvironment).finish(timeout: .seconds(240))
            let text = output.stdout + output.stderr
            #expect(output.status == 0, "\(Self.describe(output))")
            #expect(text.contains("member 1: killing myself with SIGKILL at step 50"), "\(Self.describe(output))")
            #expect(text.contains("resumed from torchrun-ckpt/step-000000000040.safetensors at step 40"), "\(Self.describe(output))")
            #expect(text.contains("fault injection off in restart 1"), "\(Self.describe(output))")
            // The restarted group ends where a run without the fault ends.
            let restarted = try Self.weights("torchrun-elastic", members: 2, in: directory)
            let reference = try Self.phalanxRunWeights(workers: 2, in: directory)
            #expect(restarted.allSatisfy { $0 == reference }, "the restarted job's weights differ from a fault-free run's")
        }
    }

    // MARK: Slurm

    /// A fresh single-node Slurm cluster for `body`, stopped by PID afterwards.
    static func withSlurm(_ body: (SlurmCluster, LaunchingPage, String) throws -> Void) throws {
        try withScratch { page, directory in
            let cluster = try SlurmCluster(repository: page.repository)
            defer { cluster.stop() }
            try body(cluster, page, directory)
        }
    }

    @Test func srunTrainsAsPhalanxRunDoes() throws {
        try Self.withSlurm { cluster, page, directory in
            let output = try page.start("slurm-srun", in: directory, environment: Self.rootEnvironment.merging(cluster.environment) { _, new in new })
                .finish(timeout: .seconds(180))
            #expect(output.status == 0, "\(Self.describe(output))")
            let slurm = try Self.weights("slurm-2", members: 2, in: directory)
            let reference = try Self.phalanxRunWeights(workers: 2, in: directory)
            #expect(slurm.allSatisfy { $0 == reference }, "srun's weights differ from phalanx-run's")
        }
    }

    @Test func srunElasticSurvivesAKilledTaskAndAdmitsAReplacementStep() throws {
        try Self.withSlurm { cluster, page, directory in
            let environment = Self.rootEnvironment.merging(cluster.environment) { _, new in new }
            let job = try page.start("slurm-srun-elastic", in: directory, environment: environment)
            let killed = job.processes.waitForMarker("killing myself with SIGKILL at step 100", count: 1, rank: 0, timeout: .seconds(120))
            #expect(killed, "\(job.processes.stdoutSoFar(0).suffix(2000)) \(job.processes.stderrSoFar(0).suffix(2000))")
            let replacement = try page.start("slurm-replacement", in: directory, environment: environment)
            let joiner = replacement.finish(timeout: .seconds(180))
            let output = job.finish(timeout: .seconds(60))
            // srun reports the killed task's status; the survivors and the joiner finish the job.
            #expect(output.status == 137, "\(Self.describe(output))")
            #expect(joiner.status == 0, "\(Self.describe(joiner))")
            #expect(output.stdout.contains("member 0: member 1 lost at step 100"), "\(Self.describe(output))")
            #expect(joiner.stdout.contains("member 3: held-out accuracy"), "\(Self.describe(joiner))")
            let finished = try [0, 2, 3].map { try FinalWeights.load(at: "\(directory)/slurm-elastic/weights-\($0).safetensors") }
            #expect(finished.allSatisfy { $0 == finished[0] }, "the members disagree")
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/slurm-elastic/weights-1.safetensors"))
        }
    }

    @Test func theSbatchExampleFinishesThroughAKilledTask() throws {
        try Self.withSlurm { cluster, page, directory in
            let environment = Self.rootEnvironment.merging(cluster.environment) { _, new in new }
                .merging(["PHALANX_KILL_RANK": "1", "PHALANX_KILL_AT_STEP": "50"]) { _, new in new }
            let output = try page.start("slurm-sbatch", in: directory, environment: environment).finish(timeout: .seconds(240))
            #expect(output.status == 0, "\(Self.describe(output))")
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            let log = try files.first { $0.hasPrefix("digits-elastic-") && $0.hasSuffix(".out") }
                .map { try String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8) } ?? ""
            #expect(log.contains("member 1: killing myself with SIGKILL at step 50"), "\(log.suffix(3000))")
            #expect(log.contains("job finished: 3 member(s) saved the final weights (srun's status: 137)"), "\(log.suffix(3000))")
            #expect(!files.contains { $0.hasSuffix(".secret") }, "the job's secret file was left behind")
            // Submitted again, the job starts from its newest checkpoint (step 200 of 230).
            let again = try page.start("slurm-sbatch", in: directory, environment: environment).finish(timeout: .seconds(240))
            #expect(again.status == 0, "\(Self.describe(again))")
            let logs = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("digits-elastic-") && $0.hasSuffix(".out") }
            let second = try logs.sorted { $0.count == $1.count ? $0 < $1 : $0.count < $1.count }.last
                .map { try String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8) } ?? ""
            #expect(logs.count == 2 && second.contains("resumed from digits.ckpt/step-000000000200.safetensors"), "\(second.suffix(3000))")
        }
    }

    // MARK: mpirun

    /// Open MPI on loopback, as root, 3 ranks on 2 cores.
    static let mpirunEnvironment = rootEnvironment.merging([
        "OMPI_MCA_btl": "tcp,self", "OMPI_MCA_btl_tcp_if_include": "lo", "OMPI_MCA_oob_tcp_if_include": "lo",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    ]) { _, new in new }

    @Test func mpirunElasticEndsWithTheSurvivorsAndTheirStatus() throws {
        try Self.withScratch { page, directory in
            let port = try LoopbackPort.free()
            let run = try page.start("mpirun-elastic", in: directory, replacing: ["29600": "\(port)"], environment: Self.mpirunEnvironment)
            // The survivors' last lines, then the end of the wrapped mpirun: within 5 s.
            let survivorsDone = run.processes.waitForMarker("status=0 members=2", count: 2, rank: 0, timeout: .seconds(180))
            let survivorsAt = ContinuousClock.now
            let output = run.finish(timeout: .seconds(30))
            let lingered = ContinuousClock.now - survivorsAt
            #expect(survivorsDone, "\(Self.describe(output))")
            #expect(lingered < .seconds(5), "mpirun ended \(lingered) after the survivors")
            #expect(output.status == 0, "\(Self.describe(output))")
            #expect(output.stdout.contains("phalanx-exit member=0 status=0 members=2"), "\(Self.describe(output))")
            #expect(output.stdout.contains("phalanx-exit member=2 status=0 members=2"), "\(Self.describe(output))")
            #expect(!output.stdout.contains("PHALANX_JOB_SECRET="), "the secret went through a variable's value")
        }
    }

    @Test func mpirunWrapperReportsAFailedJob() throws {
        // The same wrapped command where every member fails (an accuracy it cannot reach):
        // mpirun --enable-recovery alone exits 0; the wrapper exits 1.
        try Self.withScratch { page, directory in
            let port = try LoopbackPort.free()
            let run = try page.start("mpirun-elastic", in: directory, replacing: ["29600": "\(port)", "--kill-rank 1 --at-step 50": "--min-accuracy 0.999"],
                                     environment: Self.mpirunEnvironment)
            let output = run.finish(timeout: .seconds(180))
            #expect(output.status == 1, "\(Self.describe(output))")
            #expect(output.stderr.contains("mpirun ended (status 0); the job's status: 1"), "\(Self.describe(output))")
        }
    }

    @Test func mpirunWithTheMPIBackendTrainsAsPhalanxRunDoes() throws {
        try Self.withScratch { page, directory in
            let output = try page.start("mpirun-static", in: directory, environment: Self.mpirunEnvironment).finish(timeout: .seconds(180))
            #expect(output.status == 0, "\(Self.describe(output))")
            let mpi = try Self.weights("mpirun-2", members: 2, in: directory)
            let reference = try Self.phalanxRunWeights(workers: 2, in: directory)
            // Open MPI's all-reduce adds in its own order: the same training within rounding.
            #expect(mpi.allSatisfy { FinalWeights.relativeDifference($0, reference) < 1e-5 }, "mpirun's weights are far from phalanx-run's")
        }
    }
}
