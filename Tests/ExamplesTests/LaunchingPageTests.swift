import Foundation
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

    static func describe(_ output: WorkerProcesses.Output) -> String {
        "status \(output.status)\n--- stdout\n\(output.stdout.suffix(3000))\n--- stderr\n\(output.stderr.suffix(3000))"
    }

    @Test func torchrunStandaloneTrainsAsPhalanxRunDoes() throws {
        let page = try LaunchingPage()
        let directory = try page.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try page.start("torchrun-standalone", in: directory, environment: Self.rootEnvironment).finish(timeout: .seconds(180))
        #expect(output.status == 0, "\(Self.describe(output))")
        let torchrun = try Self.weights("torchrun-2", members: 2, in: directory)
        let reference = try Self.phalanxRunWeights(workers: 2, in: directory)
        #expect(torchrun[0] == reference && torchrun[1] == reference, "torchrun's weights differ from phalanx-run's")
    }

    @Test func torchrunOnTwoNodesTrainsAsPhalanxRunDoes() throws {
        let page = try LaunchingPage()
        let directory = try page.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
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

    @Test func torchrunRestartsFromTheCheckpointAfterAKilledWorker() throws {
        let page = try LaunchingPage()
        let directory = try page.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
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
