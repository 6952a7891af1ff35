import Foundation
import PhalanxTCP
import PhalanxTesting
import Testing

/// A job that reaches beyond loopback refuses to start without a secret, and a secret file that
/// others may read is refused: real trainer and launcher processes, each bounded in time.
@Suite(.serialized)
struct JobSecretTests {
    static let trainer = ["--hidden", "16", "--steps", "4", "--json"]

    /// Runs `executable` once with `environment` and returns its output (bounded).
    static func run(_ executable: String, _ arguments: [String], _ environment: [String: String]) throws -> WorkerProcesses.Output {
        try WorkerProcesses(executable: executable, arguments: arguments, count: 1) { _ in
            ExampleLaunchTests.rootEnvironment.merging(environment) { _, new in new }
        }.wait(timeout: .seconds(30))[0]
    }

    @Test(arguments: [["--backend", "tcp"], ["--elastic"]])
    func aTrainerBeyondLoopbackWithoutASecretRefusesToStart(_ mode: [String]) throws {
        // 10.255.255.1 is never contacted: the refusal comes first.
        let started = ContinuousClock.now
        let output = try Self.run(ExampleLaunchTests.binary("DigitsMLP"), Self.trainer + mode, [
            "PHALANX_RANK": "1", "PHALANX_WORLD_SIZE": "2", "PHALANX_MASTER_ADDR": "10.255.255.1", "PHALANX_MASTER_PORT": "29999",
        ])
        #expect(output.status != 0)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(output.stderr.contains("10.255.255.1, which is not a loopback address, and has no secret"), "\(output.stderr.suffix(800))")
        #expect(output.stderr.contains("PHALANX_JOB_SECRET_FILE"), "\(output.stderr.suffix(800))")
    }

    @Test func aNodeAgentBeyondLoopbackWithoutASecretRefusesToStart() throws {
        let output = try Self.run(ExampleLaunchTests.binary("phalanx-run"), [
            "--nnodes", "1:2", "--nproc-per-node", "1", "--rdzv-endpoint", "10.255.255.1:29400", "--rdzv-id", "j", "--",
            ExampleLaunchTests.binary("DigitsMLP"),
        ] + Self.trainer, [:])
        #expect(output.status != 0)
        #expect(output.stderr.contains("10.255.255.1, which is not a loopback address, and has no secret"), "\(output.stderr.suffix(800))")
    }

    @Test func aSecretFileOthersCanReadIsRefusedAndAnOwnerOnlyOneServes() throws {
        let file = NSTemporaryDirectory() + "phalanx-secret-\(UUID().uuidString)"
        try JobCredentials.randomSecret().write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: file)
        let port = try LoopbackPort.free()
        func train(rank: Int) -> [String: String] {
            ["PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "2", "PHALANX_MASTER_ADDR": "127.0.0.1", "PHALANX_MASTER_PORT": "\(port)",
             "PHALANX_JOB_SECRET_FILE": file]
        }
        let exposed = try Self.run(ExampleLaunchTests.binary("DigitsMLP"), Self.trainer + ["--backend", "tcp"], train(rank: 0))
        #expect(exposed.status != 0)
        #expect(exposed.stderr.contains("has mode 640: other users may read it; chmod 600"), "\(exposed.stderr.suffix(800))")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        let outputs = try WorkerProcesses(executable: ExampleLaunchTests.binary("DigitsMLP"), arguments: Self.trainer + ["--backend", "tcp"], count: 2) { rank in
            ExampleLaunchTests.rootEnvironment.merging(train(rank: rank)) { _, new in new }
        }.wait(timeout: .seconds(60))
        for output in outputs { #expect(output.status == 0, "\(output.stderr.suffix(800))") }
        #expect(ExampleLaunchTests.done(outputs).count == 2)
    }

    @Test func onLoopbackAJobWithoutASecretTrainsWithAWarning() throws {
        let port = try LoopbackPort.free()
        let outputs = try WorkerProcesses(executable: ExampleLaunchTests.binary("DigitsMLP"), arguments: Self.trainer + ["--backend", "tcp"], count: 2) { rank in
            ExampleLaunchTests.rootEnvironment.merging([
                "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "2", "PHALANX_MASTER_ADDR": "127.0.0.1", "PHALANX_MASTER_PORT": "\(port)",
            ]) { _, new in new }
        }.wait(timeout: .seconds(60))
        for output in outputs {
            #expect(output.status == 0, "\(output.stderr.suffix(800))")
            #expect(output.stderr.contains("on loopback only, the job id"), "\(output.stderr.suffix(800))")
        }
        #expect(ExampleLaunchTests.done(outputs).count == 2)
    }
}
