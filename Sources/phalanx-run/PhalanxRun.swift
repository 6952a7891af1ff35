import ArgumentParser
import Foundation
import Logging
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
            Several nodes (run the same line on each; the node that owns the endpoint's address hosts the rendezvous):
              phalanx-run --nnodes 2:4 --nproc-per-node 2 --rdzv-endpoint 10.0.0.1:29400 --rdzv-id job1 -- trainer …
            With etcd (the members of the etcd cluster; the agents elect the rendezvous' host through it):
              phalanx-run --nnodes 2:4 --nproc-per-node 2 --rdzv-backend etcd --rdzv-endpoint 10.0.0.5:2379,10.0.0.6:2379,10.0.0.7:2379 --rdzv-id job1 -- trainer …

            Each worker gets PHALANX_RANK, PHALANX_WORLD_SIZE, PHALANX_MASTER_ADDR/PORT (this launcher hosts the
            rendezvous), a fresh PHALANX_JOB_SECRET, PHALANX_ELASTIC=1 and PHALANX_PEERS_FILE (for joiners).
            Workers write durable checkpoints (PHALANX_CHECKPOINT_DIR). When the job loses every member (a worker
            finds no live member to join, or --stall-timeout passes without a checkpoint), the workers left are
            killed and the job starts again from its newest checkpoint, up to --max-resumes times.
            Exit status: 0 when the job finished (after any recoveries), 1 when a worker failed beyond the
            restart budget or no worker finished, 130 after Ctrl-C/SIGTERM (workers stopped, checkpoint saved).
            """)

    @Flag(help: "Wrap an mpirun command (after --): exit with the job's status (mpirun --enable-recovery exits 0 whatever happened) as soon as every surviving member finished, even where mpirun would wait on.")
    var mpirun = false

    @Option(help: "Workers to start (one host).")
    var nproc: Int?
    @Option(help: "Nodes of a multi-node job: MIN:MAX or N (with --nproc-per-node and --rdzv-endpoint).")
    var nnodes: String?
    @Option(help: "Workers each node's agent starts.")
    var nprocPerNode: Int?
    @Option(help: "builtin: HOST:PORT of the node rendezvous (the agent on the host that owns HOST hosts it); etcd: the etcd members' HOST:PORT, comma-separated.")
    var rdzvEndpoint: String?
    @Option(help: "The job's name, the same on every node (also its PHALANX_JOB_ID).")
    var rdzvId = "phalanx-job"
    @Option(help: "Node rendezvous backend: builtin (hosted by the agent that owns the endpoint) or etcd (job state, agents' leases and the membership witness in etcd).")
    var rdzvBackend = "builtin"
    @Option(help: "Seconds to wait for more nodes once MIN are there.")
    var rdzvLastCall: Double = 2
    @Option(help: "Seconds an agent waits for the job to form (or to be admitted) before it gives up.")
    var rdzvTimeout: Double = 300
    @Option(help: "Fewest members the job may go on with (PHALANX_MIN_MEMBERS for the workers).")
    var minNproc: Int?
    @Option(help: "Failed workers replaced by joiners, at most, in any --restart-window.")
    var maxRestarts = 3
    @Option(help: "Seconds of the window --max-restarts counts in (a long job with rare failures never runs out).")
    var restartWindow: Double = 600
    @Option(help: "Address the workers and the rendezvous use.")
    var masterAddr = "127.0.0.1"
    @Option(help: "Rendezvous port (0: any free port).")
    var masterPort: UInt16 = 0
    @Option(help: "Durable checkpoints (PHALANX_CHECKPOINT_DIR for the workers); default: OUT_DIR/checkpoints with --out-dir, else a scratch directory removed at exit.")
    var checkpointDir: String?
    @Option(help: "Steps between durable checkpoints (PHALANX_CHECKPOINT_EVERY for the workers; default: the trainer's).")
    var checkpointEvery: Int?
    @Option(help: "Times the whole job may be started again from its newest checkpoint after it lost every member.")
    var maxResumes = 3
    @Option(help: "Also start again from the newest checkpoint when none was written for this many seconds (0: off).")
    var stallTimeout: Double = 0
    @Option(help: "Directory for the workers' metrics, timelines and plot (PHALANX_OUT_DIR); the timelines are merged into timeline.json at the end.")
    var outDir: String?
    @Option(help: "Serve one Prometheus endpoint (/metrics, /healthz, /readyz) for all this launcher's workers on this port, their samples labelled by member and node (0: any free port, said on stderr).")
    var metricsPort: Int?
    @Option(help: "Address the --metrics-port endpoint listens on.")
    var metricsHost = "0.0.0.0"
    @Argument(parsing: .captureForPassthrough, help: "The trainer and its arguments (after --).")
    var command: [String]

    func validate() throws {
        if mpirun {
            guard nnodes == nil, nproc == nil else { throw ValidationError("--mpirun takes no --nproc or --nnodes: mpirun's -np says how many") }
            guard command.filter({ $0 != "--" }).first.map({ ($0 as NSString).lastPathComponent.hasPrefix("mpirun") || ($0 as NSString).lastPathComponent.hasPrefix("mpiexec") }) == true else {
                throw ValidationError("--mpirun wraps an mpirun command: phalanx-run --mpirun -- mpirun --enable-recovery -np 4 … trainer --elastic")
            }
            return
        }
        if nnodes != nil {
            guard nproc == nil else { throw ValidationError("give --nproc-per-node with --nnodes, not --nproc") }
            guard nodeRange != nil else { throw ValidationError("--nnodes must be N or MIN:MAX with 1 ≤ MIN ≤ MAX") }
            guard let perNode = nprocPerNode, perNode >= 1 else { throw ValidationError("--nnodes needs --nproc-per-node ≥ 1") }
            guard endpoint != nil else { throw ValidationError("--nnodes needs --rdzv-endpoint HOST:PORT") }
            guard rdzvBackend == "builtin" || rdzvBackend == "etcd" else { throw ValidationError("--rdzv-backend must be builtin or etcd, not \(rdzvBackend)") }
            if rdzvBackend == "etcd", etcdEndpoints == nil {
                throw ValidationError("--rdzv-backend etcd needs --rdzv-endpoint HOST:PORT[,HOST:PORT…] (the etcd members' client addresses)")
            }
            guard rdzvLastCall >= 0, rdzvTimeout > 0, rdzvLastCall.isFinite, rdzvTimeout.isFinite, rdzvLastCall < 1e9, rdzvTimeout < 1e9 else {
                throw ValidationError("--rdzv-last-call must be ≥ 0 and --rdzv-timeout positive (seconds)")
            }
        } else {
            guard let nproc, nproc >= 1 else { throw ValidationError("--nproc must be at least 1 (or give --nnodes and --nproc-per-node)") }
        }
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be a port number (0: any free port)") }
        guard maxRestarts >= 0 else { throw ValidationError("--max-restarts must be ≥ 0") }
        guard restartWindow > 0, restartWindow.isFinite, restartWindow < 1e9 else { throw ValidationError("--restart-window must be a positive number of seconds") }
        guard stallTimeout.isFinite, stallTimeout < 1e9 else { throw ValidationError("--stall-timeout must be a number of seconds") }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        guard maxResumes >= 0 else { throw ValidationError("--max-resumes must be ≥ 0") }
        guard stallTimeout >= 0 else { throw ValidationError("--stall-timeout must be ≥ 0") }
        if let minNproc, minNproc < 1 || minNproc > (nproc ?? 0) { throw ValidationError("--min-nproc must be between 1 and --nproc") }
        guard !command.filter({ $0 != "--" }).isEmpty else { throw ValidationError("give the trainer after --") }
    }

    /// `--nnodes` as a range.
    var nodeRange: ClosedRange<Int>? {
        guard let nnodes else { return nil }
        let parts = nnodes.split(separator: ":").map { Int($0) }
        guard let low = parts.first ?? nil, let high = parts.last ?? nil, parts.count <= 2, low >= 1, high >= low else { return nil }
        return low...high
    }

    /// `--rdzv-endpoint` as host and port (with etcd: the first member's).
    var endpoint: (host: String, port: UInt16)? {
        guard let first = rdzvEndpoint?.split(separator: ",").first.map(String.init) else { return nil }
        return Self.hostAndPort(rdzvBackend == "etcd" ? first : rdzvEndpoint ?? "")
    }

    /// `--rdzv-endpoint` as the etcd members' addresses (`etcd` backend).
    var etcdEndpoints: [String]? {
        guard let rdzvEndpoint else { return nil }
        let members = rdzvEndpoint.split(separator: ",").map(String.init)
        return members.allSatisfy({ Self.hostAndPort($0.replacingOccurrences(of: "http://", with: "")) != nil }) && !members.isEmpty ? members : nil
    }

    static func hostAndPort(_ text: String) -> (host: String, port: UInt16)? {
        guard let address = MemberAddress(id: 0, parsing: text), address.port > 0 else { return nil }
        return (address.host, address.port)
    }

    func run() throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        if mpirun { throw ExitCode(try MpirunWrapper.run(arguments)) }
        if metricsPort == nil, let value = ProcessInfo.processInfo.environment["PHALANX_METRICS_PORT"], value != "0" {
            Supervisor.say("PHALANX_METRICS_PORT=\(value) is not passed to the workers (they would share one port): use --metrics-port")
        }
        if nnodes != nil { return try runAgent(arguments) }
        let nproc = self.nproc ?? 1
        let secret = JobCredentials.randomSecret()
        let jobID = "phalanx-run-\(getpid())"
        let credentials = JobCredentials(jobID: jobID, secret: Array(secret.utf8))
        let (scratch, checkpoints) = try directories("phalanx-run")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var environment: [String: String] = [
            "PHALANX_WORLD_SIZE": "\(nproc)", "PHALANX_MASTER_ADDR": masterAddr, "PHALANX_RENDEZVOUS_EXTERNAL": "1",
            "PHALANX_JOB_ID": jobID, "PHALANX_JOB_SECRET": secret, "PHALANX_ELASTIC": "1", "PHALANX_CHECKPOINT_DIR": checkpoints,
        ]
        if let minNproc { environment["PHALANX_MIN_MEMBERS"] = "\(minNproc)" }
        if let checkpointEvery { environment["PHALANX_CHECKPOINT_EVERY"] = "\(checkpointEvery)" }
        if let outDir { environment["PHALANX_OUT_DIR"] = outDir }
        let (host, firstPort) = (masterAddr, masterPort)
        // Each incarnation of the job (the first, and each start from the checkpoints after the
        // job lost every member) has its own rendezvous, witness and peers file.
        let workers = nproc
        let makeGeneration: (Int) throws -> Supervisor.Generation = { number in
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
            return Supervisor.Generation(number: number, environment: variables, formed: { server.isFinished }, servers: [server, witness],
                                         starts: (0..<workers).map { ["PHALANX_RANK": "\($0)"] })
        }
        let supervisor = Supervisor(arguments: arguments, first: try makeGeneration(0), makeNext: makeGeneration)
        supervisor.monitor = try startMonitor(minimumWorkers: minNproc ?? 1)
        supervisor.workersPerHost = nproc
        defer { supervisor.monitor?.close() }
        Signals.forward(to: supervisor)
        try supervisor.startWorkers()
        var budget = Supervisor.Restarts(replacements: RestartBudget(limit: maxRestarts, window: .seconds(restartWindow)), maxGenerations: maxResumes, checkpoints: checkpoints)
        if stallTimeout > 0 { budget.stallTimeout = .seconds(stallTimeout) }
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

    /// Creates this launcher's scratch directory (named after `prefix`; the caller removes it)
    /// and `--out-dir`; returns the scratch directory and the workers' checkpoint directory:
    /// `--checkpoint-dir`, else `--out-dir`/checkpoints, else one in the scratch directory.
    private func directories(_ prefix: String) throws -> (scratch: String, checkpoints: String) {
        let scratch = NSTemporaryDirectory() + "\(prefix)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        if let outDir { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) }
        return (scratch, checkpointDir ?? outDir.map { "\($0)/checkpoints" } ?? "\(scratch)/checkpoints")
    }

    /// One node's agent of a multi-node job.
    private func runAgent(_ arguments: [String]) throws {
        guard let nodes = nodeRange, let endpoint, let perNode = nprocPerNode else { throw ExitCode(2) }
        let (scratch, checkpoints) = try directories("phalanx-agent")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if checkpointDir == nil, outDir == nil {
            Supervisor.say("checkpoints go to \(checkpoints), on this node only and removed at exit: give every node the same --checkpoint-dir on a shared file system to start the job again from them after every member was lost")
        }
        let configuration = NodeAgent.Configuration(
            minNodes: nodes.lowerBound, maxNodes: nodes.upperBound, workersPerNode: perNode, endpointHost: endpoint.host,
            endpointPort: endpoint.port, jobID: rdzvId, lastCall: .seconds(rdzvLastCall),
            rendezvousTimeout: .seconds(rdzvTimeout), checkpoints: checkpoints, scratch: scratch, outDir: outDir,
            maxRestarts: maxRestarts, restartWindow: .seconds(restartWindow), checkpointEvery: checkpointEvery, arguments: arguments,
            etcd: rdzvBackend == "etcd" ? etcdEndpoints : nil, monitor: try startMonitor(minimumWorkers: 1))
        defer { configuration.monitor?.close() }
        let agent = try NodeAgent(configuration, environment: ProcessInfo.processInfo.environment, logger: Logger(label: "phalanx-run"))
        let outcome = agent.run { Supervisor.say($0) }
        Supervisor.say(outcome.summary)
        throw ExitCode(outcome.code)
    }

    /// `--metrics-port`: the endpoint for this launcher's workers (nil without the option).
    private func startMonitor(minimumWorkers: Int) throws -> LauncherMonitor? {
        guard let metricsPort else { return nil }
        let monitor = try LauncherMonitor(host: metricsHost, port: metricsPort, node: ProcessInfo.processInfo.hostName, minimumWorkers: minimumWorkers)
        Supervisor.say("metrics of every worker at http://\(metricsHost):\(monitor.port)/metrics (health: /healthz, /readyz)")
        return monitor
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
