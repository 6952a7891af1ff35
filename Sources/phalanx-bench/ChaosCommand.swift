import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench chaos`: an elastic DigitsMLP job under phalanx-run, with random SIGKILLs and
/// SIGSTOPs of any worker, judged against a fault-free run of the same job: exit status, members
/// finished, throughput kept, and the largest difference of the final weights.
struct ChaosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Kill and stop random workers of an elastic job (phalanx-run, DigitsMLP) and compare it with a fault-free run.")

    @Option(help: "Workers.")
    var workers = 4
    @Option(help: "Epochs of DigitsMLP (23 steps each).")
    var epochs = 150
    @Option(help: "Milliseconds of extra work per step (a longer job meets more faults).")
    var stepDelayMs = 3
    @Option(help: "Mean seconds between SIGKILLs of a random worker (0: none).")
    var killEvery = 1.0
    @Option(help: "Mean seconds between SIGSTOPs of a random worker (0: none).")
    var stopEvery = 0.0
    @Option(help: "Mean seconds between SIGKILLs of every worker at once (0: never): the job must start again from its checkpoint.")
    var killAllEvery = 0.0
    @Option(help: "Node agents on this machine (phalanx-run --nnodes on loopback, --workers each); 0: one phalanx-run --nproc.")
    var nodes = 0
    @Option(help: "Mean seconds between SIGKILLs of a whole node (its agent and workers; a new node starts --node-back-after later). Needs --nodes.")
    var killNodeEvery = 0.0
    @Option(help: "Seconds before a killed node is replaced by a new one.")
    var nodeBackAfter = 2.0
    @Option(help: "With --nodes: the etcd cluster's client addresses (HOST:PORT,…) for --rdzv-backend etcd (each run under a new --rdzv-id); default: the builtin rendezvous.")
    var etcd: String?
    @Option(help: "DigitsMLP's --deterministic-shards for both runs (0: off): gradients summed exactly over fixed shards, so the weights do not depend on how many members computed each step.")
    var deterministicShards = 0
    @Option(help: "Seconds a stopped worker stays stopped: MIN-MAX.")
    var stopFor = "2-4"
    @Option(help: "Give up on the job after this many seconds.")
    var timeout = 600.0
    @Option(help: "Write the faulty job's output (launcher and workers) to this file.")
    var log: String?
    @Option(help: "phalanx-run's --stall-timeout: seconds without a checkpoint before the job starts again from the newest one.")
    var stallTimeout: Double = 15
    @Flag(help: "Keep the runs' weights and checkpoints (in the temporary directory named in the report).")
    var keep = false
    @Flag(help: "Print one JSON line instead of the report.")
    var json = false

    func run() throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bounds = stopFor.split(separator: "-").compactMap { Double($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { throw ValidationError("--stop-for takes MIN-MAX seconds") }
        let scratch = NSTemporaryDirectory() + "phalanx-chaos-\(getpid())"
        defer { if !keep { try? FileManager.default.removeItem(atPath: scratch) } }
        let reference = try job(directory: directory, output: "\(scratch)/reference", nemesis: nil, log: nil)
        guard killNodeEvery == 0 || nodes > 0 else { throw ValidationError("--kill-node-every needs --nodes") }
        guard etcd == nil || nodes > 0 else { throw ValidationError("--etcd needs --nodes") }
        let nemesis = ChaosNemesis(
            killEvery: killEvery > 0 ? killEvery : nil, stopEvery: stopEvery > 0 ? stopEvery : nil, stopFor: bounds[0]...bounds[1],
            killAllEvery: killAllEvery > 0 ? killAllEvery : nil, killNodeEvery: killNodeEvery > 0 ? killNodeEvery : nil)
        let logPath = log ?? "\(scratch)/chaos.log"
        let chaos = try job(directory: directory, output: "\(scratch)/chaos", nemesis: nemesis, log: logPath)
        // What the launcher did: replacements started, and starts from the checkpoints.
        let logText = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        let launcherLines = logText.split(separator: "\n").filter { $0.hasPrefix("phalanx-run:") }
        let replacements = launcherLines.filter { $0.contains("to join in its place") }.count
        let resumes = launcherLines.filter { $0.contains("starting the job again from its newest checkpoint") || $0.contains("asking the node rendezvous to start the job again") }.count
        let nodesJoined = launcherLines.filter { $0.contains("joining the running job") }.count
        // Members that started from a durable checkpoint (each new incarnation's first member).
        let resumedMembers = logText.components(separatedBy: " resumed from ").count - 1
        let referenceWeights = try Self.weights(in: "\(scratch)/reference")
        let chaosWeights = try Self.weights(in: "\(scratch)/chaos")
        guard let baseline = referenceWeights.first else { throw BenchmarkError.wrongResult("the fault-free run wrote no weights") }
        let difference = chaosWeights.map { FinalWeights.relativeDifference($0, baseline) }.max() ?? .infinity
        // How far the members that finished are from each other (0: one model).
        let spread = chaosWeights.map { FinalWeights.relativeDifference($0, chaosWeights[0]) }.max() ?? 0
        let (kills, stops, allAtOnce, nodeKills) = nemesis.injected
        let kept = reference.seconds / chaos.seconds
        let line: [String: Any] = [
            "benchmark": "chaos", "workers": workers, "epochs": epochs, "kill_every_s": killEvery, "stop_every_s": stopEvery,
            "kills": kills, "stops": stops, "kill_all_every_s": killAllEvery, "all_killed_at_once": allAtOnce, "exit_status": chaos.status, "finished_members": chaosWeights.count,
            "seconds": chaos.seconds, "fault_free_seconds": reference.seconds, "throughput_kept": kept,
            "max_relative_difference": difference.isFinite ? difference : -1, "replacements": replacements, "resumes": resumes,
            "nodes": nodes, "rdzv_backend": etcd == nil ? "builtin" : "etcd", "kill_node_every_s": killNodeEvery, "nodes_killed": nodeKills, "node_agents_joined": nodesJoined, "resumed_from_checkpoint": resumedMembers, "members_spread": spread,
            "deterministic_shards": deterministicShards,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("faults      \(kills) SIGKILL (\(allAtOnce) times every worker at once, \(nodeKills) whole nodes), \(stops) SIGSTOP (\(stopFor) s) over \(String(format: "%.1f", chaos.seconds)) s")
            print("job         exit \(chaos.status), \(chaosWeights.count) member(s) finished")
            print("launcher    \(replacements) replacement(s) started, \(resumes) start(s) from the newest checkpoint asked for, \(resumedMembers) resumed from it\(nodes > 0 ? ", \(nodesJoined) node(s) joined the running job" : "")")
            print(String(format: "throughput  %.2f of the fault-free run (%.1f s against %.1f s)", kept, chaos.seconds, reference.seconds))
            print(String(format: "weights     largest relative difference from the fault-free run %.2e (between finished members %.2e)", difference, spread))
        }
        guard chaos.status == 0, !chaosWeights.isEmpty, difference < 1e-5 else { throw ExitCode(1) }
    }

    /// Runs the job (with faults when `nemesis` is given); returns its exit status and duration.
    func job(directory: URL, output: String, nemesis: ChaosNemesis?, log: String?) throws -> (status: Int32, seconds: Double) {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        if nodes > 0, nemesis != nil { return try nodeJob(directory: directory, output: output, nemesis: nemesis, log: log) }
        let launcher = Process()
        launcher.executableURL = directory.appendingPathComponent("phalanx-run")
        launcher.arguments = [
            "--nproc", "\(nodes > 0 ? nodes * workers : workers)", "--max-restarts", "100000", "--max-resumes", "1000", "--stall-timeout", "\(stallTimeout)", "--", directory.appendingPathComponent("DigitsMLP").path,
            "--epochs", "\(epochs)", "--step-delay-ms", "\(stepDelayMs)", "--save", "\(output)/w-{member}.safetensors", "--print-every", "1000000",
        ] + trainerExtras
        var sink = FileHandle(forWritingAtPath: "/dev/null")
        if let log, FileManager.default.createFile(atPath: log, contents: nil) { sink = FileHandle(forWritingAtPath: log) }
        launcher.standardOutput = sink
        launcher.standardError = sink
        let started = Date()
        try launcher.run()
        nemesis?.run(launchers: { launcher.isRunning ? [launcher.processIdentifier] : [] }, running: { launcher.isRunning },
                     until: started.addingTimeInterval(timeout))
        while launcher.isRunning, Date().timeIntervalSince(started) < timeout { usleep(20_000) }
        if launcher.isRunning {
            launcher.terminate()
            launcher.waitUntilExit()
            return (124, Date().timeIntervalSince(started))
        }
        return (launcher.terminationStatus, Date().timeIntervalSince(started))
    }

    /// The job as `--nodes` agents on loopback with a shared checkpoint directory (the fault-free
    /// reference runs as one phalanx-run with as many workers).
    func nodeJob(directory: URL, output: String, nemesis: ChaosNemesis?, log: String?) throws -> (status: Int32, seconds: Double) {
        let port = try LoopbackPort.free()
        var sink = FileHandle(forWritingAtPath: "/dev/null")
        if let log, FileManager.default.createFile(atPath: log, contents: nil) { sink = FileHandle(forWritingAtPath: log) }
        let group = ChaosNodes(executable: directory.appendingPathComponent("phalanx-run"), arguments: [
            "--nnodes", "1:\(2 * nodes)", "--nproc-per-node", "\(workers)",
        ] + (etcd.map { ["--rdzv-backend", "etcd", "--rdzv-endpoint", $0, "--rdzv-id", "chaos-\(UUID().uuidString.prefix(8))"] }
            ?? ["--rdzv-endpoint", "127.0.0.1:\(port)", "--rdzv-id", "chaos"]) + [
            "--checkpoint-dir", "\(output)/checkpoints", "--max-restarts", "100000", "--rdzv-timeout", "60", "--",
            directory.appendingPathComponent("DigitsMLP").path, "--epochs", "\(epochs)", "--step-delay-ms", "\(stepDelayMs)",
            "--save", "\(output)/w-{member}.safetensors", "--print-every", "1000000",
        ] + trainerExtras, sink: sink)
        let started = Date()
        for _ in 0..<nodes { try group.start() }
        nemesis?.run(launchers: { group.live }, running: { group.running }, until: started.addingTimeInterval(timeout)) { pid in
            group.replace(pid, after: nodeBackAfter)
        }
        while group.running, Date().timeIntervalSince(started) < timeout { usleep(20_000) }
        if group.running {
            group.terminate()
            return (124, Date().timeIntervalSince(started))
        }
        return (group.status, Date().timeIntervalSince(started))
    }

    /// The trainer options both runs share beyond the job's size.
    var trainerExtras: [String] { deterministicShards > 0 ? ["--deterministic-shards", "\(deterministicShards)"] : [] }

    /// Every final-weights file in `directory`, flattened in name order.
    static func weights(in directory: String) throws -> [[Float]] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".safetensors") }.sorted()
        return try files.map { try FinalWeights.load(at: "\(directory)/\($0)") }
    }
}
