import Foundation
import PhalanxCheckpoint
import PhalanxTesting
import Testing

/// Whole-process tests with the DigitsMLP example: SIGKILL, restart, and compare.
@Suite(.serialized) struct ResumeTests {
    static func directory(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-\(name)-\(UUID().uuidString)").path
    }

    static func run(_ arguments: [String], timeout: Duration = .seconds(120)) throws -> WorkerProcesses.Output {
        try WorkerProcesses(executable: "DigitsMLP", arguments: arguments, count: 1) { _ in [:] }.wait(timeout: timeout)[0]
    }

    /// `train 100 steps` gives bit-identical parameters to `train, SIGKILL at step 70, start
    /// again, train to 100` (the restart resumes from the step-60 checkpoint).
    @Test func killedAndResumedRunIsBitIdentical() throws {
        let dir = Self.directory("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let common = ["--steps", "100", "--hidden", "64", "--print-every", "10"]
        let straight = try Self.run(common + ["--save", "\(dir)/straight.safetensors"])
        #expect(straight.status == 0, "\(straight.stdout) \(straight.stderr)")

        let checkpointed = common + ["--checkpoint-dir", "\(dir)/ckpt", "--checkpoint-every", "20"]
        let killed = try Self.run(checkpointed + ["--kill-at-step", "70"])
        #expect(killed.status == SIGKILL, "status \(killed.status): \(killed.stdout)")
        #expect(killed.stdout.contains("checkpoint written step 60"))
        #expect(!killed.stdout.contains("step 100/100"))

        let resumed = try Self.run(checkpointed + ["--save", "\(dir)/resumed.safetensors"])
        #expect(resumed.status == 0, "\(resumed.stdout) \(resumed.stderr)")
        #expect(resumed.stdout.contains("at step 60"), "\(resumed.stdout)")

        let a = try SafetensorsFile(path: "\(dir)/straight.safetensors"), b = try SafetensorsFile(path: "\(dir)/resumed.safetensors")
        #expect(a.entries.map(\.name) == b.entries.map(\.name))
        for entry in a.entries {
            let other = try #require(b.entry(named: entry.name))
            #expect(Array(a.rawBytes(of: entry)) == Array(b.rawBytes(of: other)), "\(entry.name) differs")
        }
    }

    /// A writer killed in the middle of a save leaves the previous checkpoint intact and found.
    @Test func killDuringASaveLeavesThePreviousCheckpoint() throws {
        let dir = Self.directory("midsave")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // ~3.8 M parameters plus Adam's two moments: about 45 MB per checkpoint.
        let job = try WorkerProcesses(
            executable: "DigitsMLP",
            arguments: ["--steps", "60", "--hidden", "50000", "--print-every", "1", "--checkpoint-dir", dir, "--checkpoint-every", "10"],
            count: 1) { _ in [:] }
        #expect(job.waitForMarker("checkpoint written step 10", ranks: [0], timeout: .seconds(120)))
        #expect(job.waitForMarker("checkpoint saving step 20", ranks: [0], timeout: .seconds(120)))
        job.signal(0, SIGKILL)
        let output = job.wait(timeout: .seconds(30))[0]
        #expect(output.status == SIGKILL)
        let store = try CheckpointStore(directory: dir)
        let (latest, skipped) = store.latestValid()
        #expect(skipped.isEmpty, "a final-named checkpoint is damaged: \(skipped)")
        let step = try #require(latest?.step)
        #expect(step == 10 || step == 20)
        // Whatever was in flight is at most a temporary file, which readers ignore.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(names.filter { $0.hasSuffix(".safetensors") }.allSatisfy { $0.hasPrefix("step-") })
    }
}
