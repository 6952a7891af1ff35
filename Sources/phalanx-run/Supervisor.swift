import Foundation
import PhalanxElastic

/// The workers of one `phalanx-run`: starts them, prefixes their output, replaces failures,
/// and starts the whole job again from its durable checkpoints when no member is left.
final class Supervisor: @unchecked Sendable {
    struct Worker {
        let label: String
        /// The rank it was started with (nil for a joiner).
        let rank: Int?
        /// The incarnation of the job it belongs to.
        let generation: Int
        let process: ChildProcess
        let readers: DispatchGroup
        /// When it was started.
        let started: ContinuousClock.Instant
    }

    /// A replacement waiting for its back-off.
    struct Replacement {
        let label: String
        let rank: Int?
        let generation: Int
        let due: ContinuousClock.Instant
    }

    /// One incarnation of the job: its own rendezvous, witness and peers file (a job started
    /// again from its checkpoints is a new job for the membership protocol).
    struct Generation {
        /// 0 for the first start, then 1, 2, …
        let number: Int
        /// What every worker of this incarnation gets.
        let environment: [String: String]
        /// Whether its rendezvous is over: before that, a worker that dies is started again
        /// with its rank, not as a joiner (there is no job to join yet).
        let formed: @Sendable () -> Bool
        /// The servers that must live as long as the incarnation.
        let servers: [AnyObject]
        /// What each worker of the incarnation gets on top of `environment` (its rank, or the
        /// members to join).
        let starts: [[String: String]]
    }

    /// What the job came to.
    struct Outcome {
        let code: Int32
        let summary: String
    }

    /// How the job may be started again from its checkpoints.
    struct Restarts {
        /// Failed workers replaced by joiners: how many in which window, after what back-off.
        var replacements: RestartBudget
        /// Times the whole job may be started again from its checkpoints.
        var maxGenerations = 0
        /// The checkpoint directory the workers write (nil: no restart from disk).
        var checkpoints: String?
        /// Start again when no checkpoint was written for this long (nil: only when a
        /// worker found no live member).
        var stallTimeout: Duration?
        /// The exit status of a worker that found no live member of its job.
        var unreachableStatus = ElasticError.jobUnreachableExitStatus
        /// Who decides on a new incarnation when the job lost every member: nil, this launcher
        /// (from `makeNext`); else this is told and a node rendezvous hands one in (`adopt`).
        var onLost: (@Sendable (String) -> Void)?
        /// How long to wait for that incarnation before giving up.
        var lostWait: Duration = .seconds(120)
    }

    /// `--metrics-port`: the endpoint serving the workers' metrics (set before starting them).
    var monitor: LauncherMonitor?
    /// Workers this launcher runs on its host, passed as `PHALANX_LOCAL_WORLD_SIZE` (torchrun's
    /// `LOCAL_WORLD_SIZE`): a trainer decides from it whether a core is free for overlapping
    /// communication (set before starting them).
    var workersPerHost: Int?
    private let arguments: [String]
    private let makeNext: ((Int) throws -> Generation)?
    // Guarded by `lock`.
    private let lock = NSLock()
    private var generation: Generation
    private var workers: [Worker] = []
    private var stopping = false
    private var nextLabel = 0
    private var incoming: Generation?
    private var finishedElsewhere = false
    private let output = NSLock()

    /// Starts with incarnation `first`; `makeNext(n)` sets up incarnation `n` when this launcher
    /// starts the job again itself (nil: a node rendezvous decides, see `adopt`).
    init(arguments: [String], first: Generation, makeNext: ((Int) throws -> Generation)?) {
        self.arguments = arguments
        self.makeNext = makeNext
        self.generation = first
    }

    /// Hands in the next incarnation (from a node rendezvous): the supervising loop kills the
    /// workers left of the current one and starts the new one's.
    func adopt(_ next: Generation) {
        lock.lock()
        incoming = next
        lock.unlock()
    }

    /// Workers of the running incarnation that run now.
    var runningWorkers: Int {
        lock.lock()
        defer { lock.unlock() }
        return workers.filter { $0.generation == generation.number && $0.process.isRunning }.count
    }

    /// The job finished on another node (a node rendezvous said so): no more replacements, a
    /// worker that finds nobody to join is done, and the launcher succeeds once its workers end.
    func noteJobFinished() {
        lock.lock()
        finishedElsewhere = true
        lock.unlock()
    }

    /// The running incarnation's number.
    var currentGeneration: Int {
        lock.lock()
        defer { lock.unlock() }
        return generation.number
    }

    /// A line of the launcher's own, prefixed so it stands out from the workers'.
    func say(_ text: String) { Self.say(text) }

    /// A line of the launcher's own (one `write`, so lines of several threads never mix).
    static func say(_ text: String) { write(Array("phalanx-run: \(text)\n".utf8), to: STDERR_FILENO) }

    /// Writes all of `bytes` to `descriptor`, retrying after signals (workers stopped and
    /// continued interrupt system calls); gives up quietly when the reader is gone.
    static func write(_ bytes: [UInt8], to descriptor: Int32) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }

    /// Starts the workers of the current incarnation, or only `starts` of them (call from one
    /// thread at a time).
    /// - Throws: if a worker cannot be started.
    func startWorkers(_ starts: [[String: String]]? = nil) throws {
        lock.lock()
        let starts = starts ?? generation.starts
        lock.unlock()
        for extra in starts {
            lock.lock()
            let label = "\(nextLabel)"
            nextLabel += 1
            lock.unlock()
            try spawn(label: label, extra: extra)
        }
    }

    /// Starts one worker labelled `label` with the current incarnation's environment plus `extra`.
    func spawn(label: String, extra: [String: String]) throws {
        lock.lock()
        let current = generation
        let refused = stopping
        lock.unlock()
        // Nothing new starts once the launcher is stopping (Ctrl-C): it would never be stopped.
        guard !refused else { return }
        let executable = arguments[0]
        let path = executable.contains("/") ? executable : Supervisor.which(executable) ?? executable
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in current.environment.merging(extra, uniquingKeysWith: { _, new in new }) { variables[key] = value }
        // One port for all would fail all but one worker: --metrics-port serves them all.
        variables["PHALANX_METRICS_PORT"] = monitor != nil ? "auto" : "0"
        if let workersPerHost { variables["PHALANX_LOCAL_WORLD_SIZE"] = "\(workersPerHost)" }
        let process = try ChildProcess(path: path, arguments: Array(arguments.dropFirst()), environment: variables)
        let readers = DispatchGroup()
        stream(process.output, prefix: "[\(label)] ", to: STDOUT_FILENO, group: readers) { [monitor] line in
            monitor?.workerSaid(String(decoding: line, as: UTF8.self), label: label)
        }
        stream(process.errors, prefix: "[\(label)] ", to: STDERR_FILENO, group: readers)
        lock.lock()
        workers.append(Worker(label: label, rank: extra["PHALANX_RANK"].flatMap { Int($0) }, generation: current.number, process: process, readers: readers, started: .now))
        let lateForStop = stopping
        lock.unlock()
        // Ctrl-C came while it was being started: it stops with the others.
        if lateForStop { process.signal(SIGTERM) }
    }

    /// Copies a worker's pipe to `sink` line by line, each line prefixed (and shown to `watch`).
    private func stream(_ descriptor: Int32, prefix: String, to sink: Int32, group: DispatchGroup, watch: (@Sendable (ArraySlice<UInt8>) -> Void)? = nil) {
        let label = Array(prefix.utf8)
        PipeLines.read(descriptor, group: group) { [output] line, complete in
            watch?(line)
            output.lock()
            Supervisor.write(label + line + (complete ? [] : [0x0A]), to: sink)
            output.unlock()
        }
    }

    /// Asks every worker to stop (SIGTERM: they save and exit at the next step), then kills
    /// the ones still running after `grace`.
    func stopAll(grace: Duration = .seconds(30)) {
        lock.lock()
        let first = !stopping
        stopping = true
        let running = workers.filter { $0.process.isRunning }
        lock.unlock()
        // Asked again (a second Ctrl-C), the workers left are asked again.
        if first { say("stopping \(running.count) worker(s)") }
        for worker in running { worker.process.signal(SIGTERM) }
        guard first else { return }
        Thread {
            let deadline = ContinuousClock.now + grace
            while running.contains(where: { $0.process.isRunning }) && ContinuousClock.now < deadline { usleep(50_000) }
            for worker in running where worker.process.isRunning { worker.process.signal(SIGKILL) }
        }.start()
    }

    /// Waits for every worker; replaces failed ones (as joiners once the job formed) while the
    /// budget allows; starts the job again from its newest checkpoint when a worker found no
    /// live member, or nothing was saved for the stall timeout.
    func supervise(_ budget: Restarts) -> Outcome {
        var replacements = budget.replacements
        var finished = 0, failedBeyondBudget = 0
        var seen = Set<String>()
        var pending: [Replacement] = []
        var progress = Progress(directory: budget.checkpoints)
        var lostSince: ContinuousClock.Instant?
        while true {
            if let next = takeIncoming() {
                switchTo(next)
                pending.removeAll()
                progress = Progress(directory: budget.checkpoints)
                lostSince = nil
                finished = 0
            }
            lock.lock()
            let snapshot = workers
            let stop = stopping
            let elsewhere = finishedElsewhere
            let current = generation
            lock.unlock()
            // The job is over: a worker here finished (counted as they are seen), or one elsewhere.
            func jobDone() -> Bool { finished > 0 || elsewhere }
            var anyRunning = false
            var lost: String?
            for worker in snapshot {
                guard let termination = worker.process.termination else { anyRunning = true; continue }
                guard seen.insert(worker.label).inserted else { continue }
                // A child of the worker may hold its pipes open: do not wait for them forever.
                _ = worker.readers.wait(timeout: .now() + 5)
                let (status, signalled): (Int32, Bool) = switch termination {
                case let .exited(code): (code, false)
                case let .signalled(number): (number, true)
                }
                // Workers of an earlier incarnation, and any while stopping, were stopped by
                // this launcher: not a member lost.
                let stoppedHere = worker.generation != current.number || stop
                monitor?.workerEnded(worker.label, how: stoppedHere ? "stopped" : signalled ? "killed" : status == 0 ? "finished" : "failed")
                guard worker.generation == current.number else { continue }
                if status == 0 && !signalled {
                    finished += 1
                    continue
                }
                let how = signalled ? "was killed by signal \(status)" : "exited with status \(status)"
                if !signalled, status == budget.unreachableStatus, budget.checkpoints != nil, !stop, !jobDone() {
                    lost = "worker \(worker.label) ended its incarnation (status \(status): no live member of the job to join, or too few members left)"
                } else if stop {
                    say("worker \(worker.label) \(how) while stopping")
                } else if jobDone() {
                    // A worker that finished means the job did: nothing left to join.
                    say("worker \(worker.label) \(how) after the job finished; not replaced")
                } else if let delay = replacements.grant(lived: .now - worker.started) {
                    lock.lock()
                    let label = "\(nextLabel)"
                    nextLabel += 1
                    lock.unlock()
                    let rank = current.formed() ? nil : worker.rank
                    let role = rank.map { "as rank \($0) (the job has not formed yet)" } ?? "to join in its place"
                    let wait = delay > .zero ? " in \(delay) (it died young)" : ""
                    say("worker \(worker.label) \(how); starting worker \(label) \(role)\(wait) (\(replacements.used()) of \(replacements.limit) restarts in \(replacements.window))")
                    pending.append(Replacement(label: label, rank: rank, generation: current.number, due: .now + delay))
                } else {
                    say("worker \(worker.label) \(how); no restarts left (\(replacements.limit) used in \(replacements.window))")
                    failedBeyondBudget += 1
                }
            }
            // Replacements whose back-off is over (dropped once the job finished or moved on).
            let due = pending.filter { $0.due <= .now }
            pending.removeAll { $0.due <= .now }
            for replacement in due where !stop && !jobDone() && replacement.generation == current.number {
                do {
                    try spawn(label: replacement.label, extra: replacement.rank.map { ["PHALANX_RANK": "\($0)"] } ?? ["PHALANX_JOIN": "1"])
                    monitor?.replacementStarted()
                    anyRunning = true
                } catch {
                    say("could not start worker \(replacement.label): \(error)")
                    failedBeyondBudget += 1
                }
            }
            if !pending.isEmpty { anyRunning = true }
            monitor?.observe(running: snapshot.filter { $0.generation == current.number && $0.process.termination == nil }.count, generation: current.number)
            if elsewhere { lostSince = nil }
            if let since = lostSince, !stop {
                if .now - since < budget.lostWait {
                    anyRunning = true
                } else {
                    say("the node rendezvous started no new incarnation within \(budget.lostWait) (too few nodes?): the job stopped; its newest checkpoint is in \(budget.checkpoints ?? "the checkpoint directory"): start the job again to resume from it")
                    failedBeyondBudget += 1
                    lostSince = nil
                }
            }
            if lost == nil, !jobDone(), !stop, let stall = budget.stallTimeout, progress.stalled(for: stall) {
                lost = "no checkpoint was written for \(stall)"
            }
            if let lost, !jobDone(), !stop, let onLost = budget.onLost {
                if lostSince == nil {
                    say("\(lost); asking the node rendezvous to start the job again from its newest checkpoint")
                    lostSince = .now
                }
                onLost(lost)
                anyRunning = true
            } else if let lost, !jobDone(), !stop {
                if current.number < budget.maxGenerations {
                    if restartFromCheckpoint(because: lost, budget: budget) {
                        progress = Progress(directory: budget.checkpoints)
                        pending.removeAll()
                        anyRunning = true
                    } else {
                        failedBeyondBudget += 1
                    }
                } else {
                    say("\(lost); no restarts from the checkpoints left (\(budget.maxGenerations) used)")
                    failedBeyondBudget += 1
                }
            }
            if !anyRunning {
                lock.lock()
                let all = workers.count
                lock.unlock()
                if seen.count >= all { break }
            }
            usleep(50_000)
        }
        let restarts = replacements.granted
        lock.lock()
        let stopped = stopping
        let generations = generation.number
        lock.unlock()
        let again = generations > 0 ? ", \(generations) restart(s) from the checkpoints" : ""
        if stopped { return Outcome(code: 130, summary: "stopped; \(finished) worker(s) had finished") }
        lock.lock()
        let doneElsewhere = finishedElsewhere
        lock.unlock()
        if failedBeyondBudget > 0 || (finished == 0 && !doneElsewhere) {
            return Outcome(code: 1, summary: "job failed: \(failedBeyondBudget) worker failure(s) beyond the restart budget, \(finished) worker(s) finished\(again)")
        }
        return Outcome(code: 0, summary: "job finished: \(finished) worker(s) done, \(restarts) replacement(s) started\(again)")
    }

    /// Kills what is left of the current incarnation and starts a new one, whose first member
    /// resumes from the newest valid checkpoint. False when the new one could not start.
    private func restartFromCheckpoint(because reason: String, budget: Restarts) -> Bool {
        lock.lock()
        let old = generation.number
        let remaining = workers.filter { $0.generation == old && $0.process.isRunning }
        lock.unlock()
        say("\(reason): stopping \(remaining.count) worker(s) left and starting the job again from its newest checkpoint in \(budget.checkpoints ?? "") (restart \(old + 1) of \(budget.maxGenerations))")
        do {
            guard let makeNext else { return false }
            try replaceIncarnation(remaining, with: try makeNext(old + 1))
            return true
        } catch {
            say("could not start the job again: \(error)")
            return false
        }
    }

    /// SIGKILLs `remaining` (not SIGTERM: a member cut off from its quorum must not save over
    /// the checkpoints, and a stopped (SIGSTOP) one must go too), waits for them, and starts
    /// `next`'s workers.
    private func replaceIncarnation(_ remaining: [Worker], with next: Generation) throws {
        for worker in remaining { worker.process.signal(SIGKILL) }
        for worker in remaining { worker.process.waitUntilExit() }
        lock.lock()
        generation = next
        lock.unlock()
        try startWorkers()
    }

    private func takeIncoming() -> Generation? {
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { return nil }
        let next = incoming
        incoming = nil
        return next
    }

    /// Kills the workers left of the current incarnation and starts `next`'s. The same
    /// incarnation again (the node's joiners had a stale directory) keeps the workers that run
    /// and starts joiners for the missing ones.
    private func switchTo(_ next: Generation) {
        lock.lock()
        let running = workers.filter { $0.generation == generation.number && $0.process.isRunning }
        let same = next.number == generation.number
        let current = generation.number
        if same { generation = next }
        lock.unlock()
        if same {
            do { try startWorkers(Array(next.starts.dropFirst(running.count))) } catch { say("could not start joiners: \(error)") }
            return
        }
        if !running.isEmpty { say("stopping \(running.count) worker(s) of incarnation \(current) for incarnation \(next.number)") }
        do { try replaceIncarnation(running, with: next) } catch { say("could not start the workers of incarnation \(next.number): \(error)") }
    }

    /// The path of `name` on PATH.
    static func which(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

/// Ctrl-C, SIGTERM and SIGHUP stop the workers cleanly instead of killing the launcher alone.
enum Signals {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func forward(to supervisor: Supervisor) {
        // A closed output (`phalanx-run … | head`) must not kill the launcher and orphan the
        // workers: writes then fail with EPIPE, which `write` gives up on quietly.
        signal(SIGPIPE, SIG_IGN)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { supervisor.stopAll() }
            source.resume()
            sources.append(source)
        }
    }
}
