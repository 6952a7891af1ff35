import Foundation
import PhalanxCheckpoint
import PhalanxTCP
import PhalanxTesting
import Testing

/// Every example, a few steps, in every launch mode: alone, static TCP ring, `mpirun` (MPI
/// backend), elastic under `mpirun --enable-recovery`, and `phalanx-run`.
@Suite(.serialized) struct ExampleLaunchTests {
    static let examples = ["DigitsMLP", "DigitsCNN", "TinyGPT", "SyntheticMLP", "MNISTMLP"]
    static let rootEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OPENBLAS_NUM_THREADS": "1"]

    /// Arguments that keep each example small and fast.
    static func arguments(_ example: String) throws -> [String] {
        let common = ["--steps", "6", "--json", "--batch-size", "32"]
        switch example {
        case "SyntheticMLP": return common + ["--features", "16", "--hidden", "32", "--samples", "512"]
        case "MNISTMLP": return common + ["--data", try TinyMNIST.directory(), "--hidden", "32"]
        // Overlap on, in buckets of 8 KiB: several buckets reduced during backward in every mode.
        case "TinyGPT": return common + ["--characters", "20000", "--context", "16", "--embed", "16", "--heads", "2", "--blocks", "1", "--sample-length", "20", "--overlap", "on", "--bucket-kb", "8"]
        default: return common + ["--hidden", "32"]
        }
    }

    static func binary(_ name: String) -> String { WorkerProcesses.binaryDirectory.appendingPathComponent(name).path }

    static func done(_ outputs: [WorkerProcesses.Output]) -> [[String: Any]] {
        outputs.flatMap { $0.jsonLines.filter { $0["event"] as? String == "done" } }
    }

    /// The `event` events of a phalanx-run job's output (worker lines carry a "[label] " prefix,
    /// stripped to read the JSON).
    static func launcherEvents(_ stdout: String, _ event: String) -> [[String: Any]] {
        stdout.split(separator: "\n").compactMap { line -> [String: Any]? in
            guard let brace = line.firstIndex(of: "{") else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(line[brace...].utf8))) as? [String: Any]
        }.filter { $0["event"] as? String == event }
    }

    static func check(_ outputs: [WorkerProcesses.Output], ranks: Int, _ label: String) {
        let finished = done(outputs)
        #expect(finished.count == ranks, "\(label): \(outputs.map { $0.stdout.suffix(600) + $0.stderr.suffix(600) })")
        #expect(finished.allSatisfy { $0["steps"] as? Int == 6 && $0["world_size"] as? Int == ranks }, "\(label): \(finished)")
        #expect(Set(finished.compactMap { $0["params_hash"] as? String }).count == 1, "\(label): ranks disagree")
    }

    @Test(arguments: examples)
    func alone(_ example: String) throws {
        let output = try WorkerProcesses(executable: example, arguments: try Self.arguments(example), count: 1) { _ in Self.rootEnvironment }
            .wait(timeout: .seconds(120))
        #expect(output[0].status == 0, "\(output[0].stderr.suffix(600))")
        Self.check(output, ranks: 1, "\(example) alone")
    }

    @Test(arguments: examples)
    func staticTCPRing(_ example: String) throws {
        let secret = JobCredentials.randomSecret()
        let server = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: 2, credentials: JobCredentials(jobID: "examples", secret: Array(secret.utf8)))
        server.start()
        let port = server.port
        let outputs = try WorkerProcesses(executable: example, arguments: try Self.arguments(example) + ["--backend", "tcp"], count: 2) { rank in
            Self.rootEnvironment.merging([
                "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "2", "PHALANX_MASTER_ADDR": "127.0.0.1", "PHALANX_MASTER_PORT": "\(port)",
                "PHALANX_RENDEZVOUS_EXTERNAL": "1", "PHALANX_JOB_ID": "examples", "PHALANX_JOB_SECRET": secret,
            ]) { _, new in new }
        }.wait(timeout: .seconds(120))
        Self.check(outputs, ranks: 2, "\(example) over TCP")
    }

    @Test(arguments: examples)
    func mpirunWithTheMPIBackend(_ example: String) throws {
        let output = try WorkerProcesses(
            executable: "/usr/bin/env", arguments: ["mpirun", "--oversubscribe", "-np", "2", Self.binary(example)] + (try Self.arguments(example)), count: 1
        ) { _ in Self.rootEnvironment }.wait(timeout: .seconds(120))
        #expect(output[0].status == 0, "\(output[0].stderr.suffix(600))")
        #expect(output[0].stdout.contains("\"backend\":\"mpi\""))
        Self.check(output, ranks: 2, "\(example) under mpirun")
    }

    @Test(arguments: examples)
    func elasticUnderMpirunWithRecovery(_ example: String) throws {
        let port = try LoopbackPort.free()
        var arguments = ["mpirun", "--enable-recovery", "--oversubscribe", "-np", "2"]
        arguments += ["-x", "PHALANX_JOB_SECRET=\(UUID().uuidString)", "-x", "PHALANX_MASTER_PORT=\(port)", Self.binary(example)]
        let output = try WorkerProcesses(executable: "/usr/bin/env", arguments: arguments + (try Self.arguments(example)) + ["--elastic"], count: 1) { _ in
            Self.rootEnvironment
        }.wait(timeout: .seconds(120))
        Self.check(output, ranks: 2, "\(example) elastic under mpirun")
    }

    @Test(arguments: examples)
    func phalanxRun(_ example: String) throws {
        let output = try WorkerProcesses(
            executable: "phalanx-run", arguments: ["--nproc", "2", "--", Self.binary(example)] + (try Self.arguments(example)), count: 1
        ) { _ in Self.rootEnvironment }.wait(timeout: .seconds(120))
        #expect(output[0].status == 0, "\(output[0].stderr.suffix(800))")
        let finished = Self.launcherEvents(output[0].stdout, "done")
        #expect(finished.count == 2 && finished.allSatisfy { $0["steps"] as? Int == 6 }, "\(output[0].stdout.suffix(800))")
        #expect(output[0].stdout.contains("[0] ") && output[0].stdout.contains("[1] "))
    }

    /// `--overlap auto` overlaps only with a core to spare per local rank: not with 1000 ranks
    /// on the host, yes with one (and one BLAS thread) on a machine of at least two cores.
    @Test func overlapAutoFollowsTheFreeCores() throws {
        for (localRanks, expected) in [(1000, false), (1, ProcessInfo.processInfo.activeProcessorCount >= 2)] {
            let secret = JobCredentials.randomSecret()
            let server = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: 2, credentials: JobCredentials(jobID: "overlap", secret: Array(secret.utf8)))
            server.start()
            let port = server.port
            let outputs = try WorkerProcesses(
                executable: "TinyGPT", arguments: try Self.arguments("TinyGPT").map { $0 == "on" ? "auto" : $0 } + ["--backend", "tcp"], count: 2
            ) { rank in
                Self.rootEnvironment.merging([
                    "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "2", "PHALANX_MASTER_ADDR": "127.0.0.1", "PHALANX_MASTER_PORT": "\(port)",
                    "PHALANX_RENDEZVOUS_EXTERNAL": "1", "PHALANX_JOB_ID": "overlap", "PHALANX_JOB_SECRET": secret, "PHALANX_LOCAL_WORLD_SIZE": "\(localRanks)",
                ]) { _, new in new }
            }.wait(timeout: .seconds(120))
            Self.check(outputs, ranks: 2, "TinyGPT, \(localRanks) local ranks")
            #expect(Self.done(outputs).allSatisfy { $0["overlap"] as? Bool == expected }, "\(localRanks) local ranks: \(Self.done(outputs))")
        }
    }

    /// The convolutional example learns the digits: ≥ 98 % held-out accuracy after 40 epochs
    /// (`--min-accuracy` makes the trainer fail below it).
    @Test func digitsCNNReaches98PercentHeldOut() throws {
        let output = try WorkerProcesses(executable: "DigitsCNN", arguments: ["--epochs", "40", "--min-accuracy", "0.98", "--json"], count: 1) { _ in Self.rootEnvironment }
            .wait(timeout: .seconds(300))
        #expect(output[0].status == 0, "\(output[0].stderr.suffix(600))")
        let accuracy = try #require(Self.done(output).first?["accuracy"] as? Double)
        #expect(accuracy >= 0.98, "held-out accuracy \(accuracy)")
    }

    @Test func initialWeightsComeFromInitAndGoOutThroughSave() throws {
        let directory = NSTemporaryDirectory() + "phalanx-init-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let first = try WorkerProcesses(executable: "DigitsMLP", arguments: ["--steps", "5", "--hidden", "16", "--save", "\(directory)/a.safetensors"], count: 1) { _ in [:] }
            .wait(timeout: .seconds(60))
        #expect(first[0].status == 0)
        // Zero steps from those weights (and another seed): the saved weights are the same bytes.
        let second = try WorkerProcesses(
            executable: "DigitsMLP", arguments: ["--steps", "0", "--hidden", "16", "--seed", "9", "--init", "\(directory)/a.safetensors", "--save", "\(directory)/b.safetensors"],
            count: 1) { _ in [:] }.wait(timeout: .seconds(60))
        #expect(second[0].status == 0, "\(second[0].stderr)")
        let a = try SafetensorsFile(path: "\(directory)/a.safetensors"), b = try SafetensorsFile(path: "\(directory)/b.safetensors")
        #expect(a.entries.map(\.name) == b.entries.map(\.name))
        for entry in a.entries { #expect(Array(a.rawBytes(of: entry)) == Array(b.rawBytes(of: try #require(b.entry(named: entry.name))))) }
        // A file of another model is refused with a clear error.
        let wrong = try WorkerProcesses(executable: "DigitsMLP", arguments: ["--steps", "1", "--hidden", "17", "--init", "\(directory)/a.safetensors"], count: 1) { _ in [:] }
            .wait(timeout: .seconds(60))
        #expect(wrong[0].status != 0)
        #expect(wrong[0].stderr.contains("layers.0.weight"), "\(wrong[0].stderr)")
    }
}

/// MNIST-format IDX files with a few random images, so the MNIST example runs without the
/// real data set.
enum TinyMNIST {
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "phalanx-tiny-mnist-\(getpid())"
        if FileManager.default.fileExists(atPath: "\(path)/t10k-labels-idx1-ubyte") { return path }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        for (prefix, count) in [("train", 256), ("t10k", 64)] {
            var images = [UInt8](repeating: 0, count: 16 + count * 784)
            let imageHeader: [UInt32] = [0x0000_0803, UInt32(count), 28, 28]
            for (i, value) in imageHeader.enumerated() { for b in 0..<4 { images[4 * i + b] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(b))) } }
            for i in 16..<images.count { images[i] = UInt8.random(in: 0...255, using: &generator) }
            var labels = [UInt8](repeating: 0, count: 8 + count)
            let labelHeader: [UInt32] = [0x0000_0801, UInt32(count)]
            for (i, value) in labelHeader.enumerated() { for b in 0..<4 { labels[4 * i + b] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(b))) } }
            for i in 8..<labels.count { labels[i] = UInt8.random(in: 0...9, using: &generator) }
            try Data(images).write(to: URL(fileURLWithPath: "\(path)/\(prefix)-images-idx3-ubyte"))
            try Data(labels).write(to: URL(fileURLWithPath: "\(path)/\(prefix)-labels-idx1-ubyte"))
        }
        return path
    }
}
