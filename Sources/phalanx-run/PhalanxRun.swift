import ArgumentParser
import Foundation
import Phalanx
import PhalanxElastic
import PhalanxTelemetry

/// `phalanx-run`: starts N local workers of an elastic job (like torchrun), streams their output
/// prefixed by rank, replaces failed workers with joiners while the restart budget lasts, and
/// stops everything cleanly on Ctrl-C.
@main
struct PhalanxRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phalanx-run",
        abstract: "Run N local workers of an elastic Phalanx job; replace failed ones as joiners.",
        discussion: """
            Example: phalanx-run --nproc 4 --out-dir run -- .build/release/DigitsMLP --kill-rank 2 --at-step 300

            Each worker gets PHALANX_RANK, PHALANX_WORLD_SIZE, PHALANX_MASTER_ADDR/PORT (this launcher hosts the
            rendezvous), a fresh PHALANX_JOB_SECRET, PHALANX_ELASTIC=1 and PHALANX_PEERS_FILE (for joiners).
            Workers write durable checkpoints (PHALANX_CHECKPOINT_DIR). When the job loses every member (a worker
            finds no live member to join, or --stall-timeout passes without a checkpoint), the workers left are
            killed and the job starts again from its newest checkpoint, up to --max-resumes times.
            Exit status: 0 when the job finished (after any recoveries), 1 when a worker failed beyond the
            restart budget or no worker finished, 130 after Ctrl-C/SIGTERM (workers stopped, checkpoint saved).
            """)

    @Option(help: "Workers to start.")
    var nproc: Int
    @Option(help: "Fewest members the job may go on with (PHALANX_MIN_MEMBERS for the workers).")
    var minNproc: Int?
    @Option(help: "Failed workers replaced by joiners, at most.")
    var maxRestarts = 3
    @Option(help: "Address the workers and the rendezvous use.")
    var masterAddr = "127.0.0.1"
    @Option(help: "Rendezvous port (0: any free port).")
    var masterPort: UInt16 = 0
    @Option(help: "Durable checkpoints (PHALANX_CHECKPOINT_DIR for the workers); default: a scratch directory removed at exit.")
    var checkpointDir: String?
    @Option(help: "Times the whole job may be started again from its newest checkpoint after it lost every member.")
    var maxResumes = 3
    @Option(help: "Also start again from the newest checkpoint when none was written for this many seconds (0: off).")
    var stallTimeout: Double = 0
    @Option(help: "Directory for the workers' metrics, timelines and plot (PHALANX_OUT_DIR); the timelines are merged into timeline.json at the end.")
    var outDir: String?
    @Argument(parsing: .captureForPassthrough, help: "The trainer and its arguments (after --).")
    var command: [String]

    func validate() throws {
        guard nproc >= 1 else { throw ValidationError("--nproc must be at least 1") }
        guard maxRestarts >= 0 else { throw ValidationError("--max-restarts must be ≥ 0") }
        guard maxResumes >= 0 else { throw ValidationError("--max-resumes must be ≥ 0") }
        guard stallTimeout >= 0 else { throw ValidationError("--stall-timeout must be ≥ 0") }
        if let minNproc, minNproc < 1 || minNproc > nproc { throw ValidationError("--min-nproc must be between 1 and --nproc") }
        guard !command.filter({ $0 != "--" }).isEmpty else { throw ValidationError("give the trainer after --") }
    }

    func run() throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        let secret = JobCredentials.randomSecret()
        let jobID = "phalanx-run-\(getpid())"
        let credentials = JobCredentials(jobID: jobID, secret: Array(secret.utf8))
        let scratch = NSTemporaryDirectory() + "phalanx-run-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if let outDir { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) }
        let checkpoints = checkpointDir ?? "\(scratch)/checkpoints"
        var environment: [String: String] = [
            "PHALANX_WORLD_SIZE": "\(nproc)", "PHALANX_MASTER_ADDR": masterAddr, "PHALANX_RENDEZVOUS_EXTERNAL": "1",
            "PHALANX_JOB_ID": jobID, "PHALANX_JOB_SECRET": secret, "PHALANX_ELASTIC": "1", "PHALANX_CHECKPOINT_DIR": checkpoints,
        ]
        if let minNproc { environment["PHALANX_MIN_MEMBERS"] = "\(minNproc)" }
        if let outDir { environment["PHALANX_OUT_DIR"] = outDir }
        let (host, firstPort) = (masterAddr, masterPort)
        // Each incarnation of the job (the first, and each start from the checkpoints after the
        // job lost every member) has its own rendezvous, witness and peers file.
        let supervisor = try Supervisor(arguments: arguments, workers: nproc) { number in
            let server = try RendezvousServer(host: host, port: number == 0 ? firstPort : 0, worldSize: nproc, credentials: credentials, timeout: .seconds(300))
            server.start()
            // The membership witness: breaks ties of even memberships (half of the workers
            // lost, or a 2 | 2 partition), so that exactly one side goes on.
            let witness = try WitnessServer(host: host, credentials: credentials)
            witness.start()
            let variables = environment.merging([
                "PHALANX_MASTER_PORT": "\(server.port)", "PHALANX_WITNESS": witness.environmentValue,
                "PHALANX_PEERS_FILE": "\(scratch)/peers-\(number)",
            ]) { _, new in new }
            return Supervisor.Generation(number: number, environment: variables, formed: { server.isFinished }, servers: [server, witness])
        }
        Signals.forward(to: supervisor)
        try supervisor.startWorkers()
        var budget = Supervisor.Restarts(maxReplacements: maxRestarts, maxGenerations: maxResumes, checkpoints: checkpoints)
        if stallTimeout > 0 { budget.stallTimeout = .milliseconds(Int(stallTimeout * 1000)) }
        let outcome = supervisor.supervise(budget)
        if let outDir {
            mergeTimelines(in: outDir)
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []).sorted()
            let shown = files.filter { $0 == "timeline.json" || $0 == "plot.svg" || $0.hasPrefix("metrics-") }
            supervisor.say("metrics, timeline and plot in \(outDir)/: \(shown.joined(separator: ", "))"
                + " (open timeline.json in https://ui.perfetto.dev or chrome://tracing, plot.svg in a browser)")
        }
        supervisor.say(outcome.summary)
        throw ExitCode(outcome.code)
    }

    private func mergeTimelines(in directory: String) {
        let parts = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("timeline-") && $0.hasSuffix(".json") }.sorted().map { "\(directory)/\($0)" }
        guard !parts.isEmpty else { return }
        do { try Timeline.merge(parts, into: "\(directory)/timeline.json") } catch {
            FileHandle.standardError.write(Data("phalanx-run: could not merge timelines: \(error)\n".utf8))
        }
    }
}
