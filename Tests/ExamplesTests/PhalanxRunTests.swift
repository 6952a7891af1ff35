import Foundation
import PhalanxTelemetry
import PhalanxTesting
import Testing

/// The launcher: recoveries, the restart budget, Ctrl-C, and the files a run leaves.
@Suite(.serialized) struct PhalanxRunTests {
    static func launch(_ arguments: [String], trainer: [String]) throws -> WorkerProcesses {
        try WorkerProcesses(
            executable: "phalanx-run", arguments: arguments + ["--", ExampleLaunchTests.binary("DigitsMLP"), "--hidden", "32", "--print-every", "20"] + trainer,
            count: 1) { _ in ExampleLaunchTests.rootEnvironment }
    }

    static func directory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "phalanx-run-\(name)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aKilledWorkerIsReplacedAndTheJobSucceedsWithEveryPhaseRecorded() throws {
        let out = Self.directory("out")
        let output = try Self.launch(
            ["--nproc", "3", "--max-restarts", "1", "--out-dir", out],
            trainer: ["--steps", "120", "--kill-rank", "1", "--at-step", "40", "--step-delay-ms", "5", "--checkpoint-dir", "\(out)/ckpt", "--checkpoint-every", "20"]
        ).wait(timeout: .seconds(180))[0]
        #expect(output.status == 0, "\(output.stderr.suffix(1500))")
        #expect(output.stderr.contains("starting worker 3 to join in its place"), "\(output.stderr.suffix(1500))")
        #expect(output.stdout.contains("member 1 lost at step 40"), "\(output.stdout.suffix(1500))")
        #expect(output.stdout.components(separatedBy: "held-out accuracy").count - 1 == 3, "three workers finish")

        // The timeline: JSON, every phase, one process per member that finished.
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/timeline.json"))
        let events = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        let phases = Set(events.filter { $0["ph"] as? String == "X" }.compactMap { $0["name"] as? String })
        #expect(phases == Set(Timeline.Phase.allCases.map(\.rawValue)), "\(phases)")
        #expect(Set(events.compactMap { $0["pid"] as? Int }).isSuperset(of: [0, 2, 3]))
        // The plot: well-formed, both series, the loss and the join marked.
        let svg = try String(contentsOfFile: "\(out)/plot.svg", encoding: .utf8)
        #expect(svg.contains("data-series=\"loss\"") && svg.contains("data-series=\"samples/s\""))
        #expect(svg.contains(">lost 1<") && svg.contains(">joined 3<"), "\(svg.suffix(600))")
        // Metrics: JSON lines with the change.
        let metrics = MetricsLog.read(path: "\(out)/metrics-0.jsonl")
        #expect(metrics.contains { $0["event"] as? String == "change" && $0["lost"] as? [Int] == [1] })
        #expect(metrics.filter { $0["event"] as? String == "step" }.count >= 100)
    }

    @Test func aJobThatLostEveryMemberStartsAgainFromItsCheckpointAndMatchesAFaultFreeRun() throws {
        let out = Self.directory("resume")
        let trainer = ["--steps", "400", "--step-delay-ms", "10", "--checkpoint-every", "20"]
        let job = try Self.launch(["--nproc", "3", "--max-restarts", "10", "--max-resumes", "2"], trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"])
        #expect(job.waitForMarker("step 100/400", ranks: [0], timeout: .seconds(60)))
        // Every worker at once: no member is left to hand the state over.
        let children = WorkerProcesses.children(of: job.pid(0))
        #expect(children.count == 3, "\(children)")
        for child in children { kill(child, SIGKILL) }
        let output = job.wait(timeout: .seconds(180))[0]
        #expect(output.status == 0, "\(output.stderr.suffix(2000))")
        #expect(output.stderr.contains("no live member of the job to join"), "\(output.stderr.suffix(2000))")
        #expect(output.stderr.contains("starting the job again from its newest checkpoint"), "\(output.stderr.suffix(2000))")
        #expect(output.stderr.contains("resumed from"), "\(output.stderr.suffix(2000))")
        #expect(output.stdout.components(separatedBy: "held-out accuracy").count - 1 == 3, "three workers finish: \(output.stdout.suffix(1000))")

        let intact = Self.directory("intact")
        let reference = try Self.launch(["--nproc", "3"], trainer: trainer + ["--save", "\(intact)/w-{member}.safetensors"]).wait(timeout: .seconds(180))[0]
        #expect(reference.status == 0, "\(reference.stderr.suffix(800))")
        let expected = try FinalWeights.load(at: "\(intact)/w-0.safetensors")
        let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".safetensors") }
        #expect(files.count == 3, "\(files)")
        for file in files {
            let difference = FinalWeights.relativeDifference(try FinalWeights.load(at: "\(out)/\(file)"), expected)
            #expect(difference < 1e-5, "\(file): relative difference \(difference) from the run that lost nobody")
        }
    }

    @Test func theReadmeQuickStartRunsUnderTheLauncher() throws {
        let output = try WorkerProcesses(
            executable: "phalanx-run", arguments: ["--nproc", "2", "--", ExampleLaunchTests.binary("QuickStart")], count: 1
        ) { _ in ExampleLaunchTests.rootEnvironment }.wait(timeout: .seconds(120))[0]
        #expect(output.status == 0, "\(output.stderr.suffix(800))")
        #expect(output.stdout.contains("[0] member 0 finished 870 steps") && output.stdout.contains("[1] member 1 finished 870 steps"), "\(output.stdout.suffix(800))")
    }

    @Test func aFailureBeyondTheRestartBudgetFailsTheJob() throws {
        let output = try Self.launch(["--nproc", "2", "--max-restarts", "0"], trainer: ["--steps", "60", "--kill-rank", "1", "--at-step", "10"])
            .wait(timeout: .seconds(120))[0]
        #expect(output.status == 1, "\(output.stderr.suffix(800))")
        #expect(output.stderr.contains("no restarts left"), "\(output.stderr.suffix(800))")
    }

    @Test func ctrlCStopsEveryWorkerWithTheCheckpointSaved() throws {
        let checkpoints = Self.directory("ckpt")
        let job = try Self.launch(["--nproc", "2"], trainer: ["--steps", "100000", "--step-delay-ms", "5", "--checkpoint-dir", checkpoints, "--checkpoint-every", "1000"])
        #expect(job.waitForMarker("step 40/", ranks: [0], timeout: .seconds(60)))
        job.signal(0, SIGINT)
        let output = job.wait(timeout: .seconds(60))[0]
        #expect(output.status == 130, "\(output.stderr.suffix(1200))")
        #expect(output.stderr.contains("stopped by a signal at step"), "\(output.stderr.suffix(1200))")
        let saved = try FileManager.default.contentsOfDirectory(atPath: checkpoints).filter { $0.hasSuffix(".safetensors") }
        #expect(saved.count == 1, "\(saved)")
        // No worker outlives the launcher.
        #expect(!output.stdout.contains("100000/100000"))
    }

    @Test func aKillInTheLastStepsEndsWithSuccessInTwentyRunsOfTwenty() throws {
        // The replacement of a worker killed near the end may start after the others finished:
        // it must exit 0 ("the job finished"), or not be started at all, and the launcher too.
        var failures: [String] = [], endedAfterTheJob = 0
        for run in 0..<20 {
            let rank = run % 3, step = 196 + run % 4
            let output = try Self.launch(["--nproc", "3", "--max-restarts", "3"], trainer: ["--steps", "200", "--kill-rank", "\(rank)", "--at-step", "\(step)"])
                .wait(timeout: .seconds(120))[0]
            if output.status != 0 { failures.append("run \(run) (rank \(rank) at step \(step)): \(output.status) \(output.stderr.suffix(600))") }
            let text = output.stdout + output.stderr
            if text.contains("already finished at step 200 without this process") || text.contains("after the job finished; not replaced") { endedAfterTheJob += 1 }
        }
        #expect(failures.isEmpty, "\(failures.count) of 20 runs failed: \(failures)")
        // The case this is about happened: a replacement came too late for the job.
        #expect(endedAfterTheJob >= 5, "only \(endedAfterTheJob) of 20 runs had a replacement arrive after the end")
    }

    @Test func theLauncherSurvivesWhatItsWorkersDo() throws {
        func run(_ arguments: [String]) throws -> WorkerProcesses.Output {
            try WorkerProcesses(executable: "phalanx-run", arguments: arguments, count: 1) { _ in ExampleLaunchTests.rootEnvironment }
                .wait(timeout: .seconds(180))[0]
        }
        // Two thousand spawns (Foundation's Process crashed after some hundreds).
        let many = try run(["--nproc", "2000", "--", "/bin/true"])
        #expect(many.status == 0 && many.stderr.contains("2000 worker(s) done"), "\(many.stderr.suffix(600))")
        // A flood of output, then the worker closes its pipes and lives on: every line arrives, prefixed.
        let flood = try run(["--nproc", "2", "--", "/bin/sh", "-c", "seq 1 200000; exec >&- 2>&-; sleep 1"])
        #expect(flood.status == 0, "\(flood.stderr.suffix(600))")
        let lines = flood.stdout.split(separator: "\n")
        #expect(lines.count == 400_000 && lines.allSatisfy { $0.hasPrefix("[0] ") || $0.hasPrefix("[1] ") }, "\(lines.count) lines")
        #expect(lines.contains("[1] 200000"))
        // A worker that cannot start: a clear error, a failed exit.
        let missing = try run(["--nproc", "1", "--", "/nonexistent/trainer"])
        #expect(missing.status != 0 && missing.stderr.contains("could not start /nonexistent/trainer: No such file or directory"), "\(missing.stderr)")
        // Workers stopped and continued again and again (interrupted reads and writes).
        let job = try WorkerProcesses(executable: "phalanx-run", arguments: ["--nproc", "2", "--", "/bin/sh", "-c", "for i in $(seq 1 40); do echo line $i; sleep 0.05; done"],
                                      count: 1) { _ in ExampleLaunchTests.rootEnvironment }
        usleep(300_000)
        for _ in 0..<10 {
            for child in WorkerProcesses.children(of: job.pid(0)) { kill(child, SIGSTOP) }
            usleep(50_000)
            for child in WorkerProcesses.children(of: job.pid(0)) { kill(child, SIGCONT) }
            usleep(50_000)
        }
        let stopped = job.wait(timeout: .seconds(60))[0]
        #expect(stopped.status == 0 && stopped.stdout.contains("[0] line 40") && stopped.stdout.contains("[1] line 40"), "\(stopped.stderr.suffix(600))")
    }

    @Test func checkpointsAreDurableByDefaultUnderTheOutputDirectoryAtTheGivenCadence() throws {
        let out = Self.directory("cadence")
        let output = try Self.launch(["--nproc", "2", "--out-dir", out, "--checkpoint-every", "30"], trainer: ["--steps", "120"])
            .wait(timeout: .seconds(120))[0]
        #expect(output.status == 0, "\(output.stderr.suffix(800))")
        let saved = try FileManager.default.contentsOfDirectory(atPath: "\(out)/checkpoints").filter { $0.hasSuffix(".safetensors") }.sorted()
        #expect(saved == ["step-000000000060.safetensors", "step-000000000090.safetensors", "step-000000000120.safetensors"], "\(saved)")
    }

    /// `--deterministic-shards`: one process, and four workers that lose one (three members
    /// compute some steps, then four again with the replacement, which joined with the state
    /// over the network), end with the same bits. Without it they do not (the control).
    @Test func deterministicShardsGiveTheSameBitsAloneAndThroughAKilledWorker() throws {
        func weights(_ extra: [String]) throws -> (alone: [Float], job: [[Float]]) {
            let out = Self.directory("exact")
            let trainer = ["--steps", "90"] + extra
            let alone = try WorkerProcesses(
                executable: ExampleLaunchTests.binary("DigitsMLP"), arguments: ["--hidden", "32", "--save", "\(out)/alone.safetensors"] + trainer, count: 1
            ) { _ in ExampleLaunchTests.rootEnvironment }.wait(timeout: .seconds(120))[0]
            #expect(alone.status == 0, "\(alone.stderr.suffix(800))")
            let job = try Self.launch(["--nproc", "4", "--max-restarts", "1"],
                                      trainer: trainer + ["--kill-rank", "1", "--at-step", "30", "--step-delay-ms", "5", "--save", "\(out)/w-{member}.safetensors"])
                .wait(timeout: .seconds(180))[0]
            #expect(job.status == 0, "\(job.stderr.suffix(1500))")
            #expect(job.stdout.contains("member 1 lost at step 30"), "\(job.stdout.suffix(1500))")
            let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("w-") }.sorted()
            #expect(files.count == 4, "\(files)")
            return (try FinalWeights.load(at: "\(out)/alone.safetensors"), try files.map { try FinalWeights.load(at: "\(out)/\($0)") })
        }
        let exact = try weights(["--deterministic-shards", "6"])
        for (index, member) in exact.job.enumerated() {
            #expect(member.map(\.bitPattern) == exact.alone.map(\.bitPattern),
                    "member file \(index): relative difference \(FinalWeights.relativeDifference(member, exact.alone)) from the run alone")
        }
        let plain = try weights([])
        #expect(plain.job.contains { $0.map(\.bitPattern) != plain.alone.map(\.bitPattern) }, "without fixed shards the sums round differently")
    }
}
