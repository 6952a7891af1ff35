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
        let process: Process
        let readers: DispatchGroup
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
    }

    /// What the job came to.
    struct Outcome {
        let code: Int32
        let summary: String
    }

    /// How the job may be started again from its checkpoints.
    struct Restarts {
        /// Failed workers replaced by joiners, at most.
        var maxReplacements: Int
        /// Times the whole job may be started again from its checkpoints.
        var maxGenerations = 0
        /// The checkpoint directory the workers write (nil: no restart from disk).
        var checkpoints: String?
        /// Start again when no checkpoint was written for this long (nil: only when a
        /// worker found no live member).
        var stallTimeout: Duration?
        /// The exit status of a worker that found no live member of its job.
        var unreachableStatus = ElasticError.jobUnreachableExitStatus
    }

    private let arguments: [String]
    private let workerCount: Int
    private let makeGeneration: (Int) throws -> Generation
    // Guarded by `lock`.
    private let lock = NSLock()
    private var generation: Generation
    private var workers: [Worker] = []
    private var stopping = false
    private var nextLabel = 0
    private let output = NSLock()

    /// `makeGeneration(n)` sets up incarnation `n` (0 at once).
    /// - Throws: what `makeGeneration` throws.
    init(arguments: [String], workers: Int, makeGeneration: @escaping (Int) throws -> Generation) throws {
        self.arguments = arguments
        self.workerCount = workers
        self.makeGeneration = makeGeneration
        self.generation = try makeGeneration(0)
    }

    /// A line of the launcher's own, prefixed so it stands out from the workers'.
    func say(_ text: String) {
        output.lock()
        Self.write(Array("phalanx-run: \(text)\n".utf8), to: STDERR_FILENO)
        output.unlock()
    }

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

    /// Starts the workers of the current incarnation, ranks 0 ..< N.
    /// - Throws: if a worker cannot be started.
    func startWorkers() throws {
        lock.lock()
        let labels = (0..<workerCount).map { nextLabel + $0 }
        lock.unlock()
        for (rank, label) in labels.enumerated() { try spawn(label: "\(label)", extra: ["PHALANX_RANK": "\(rank)"]) }
    }

    /// Starts one worker labelled `label` with the current incarnation's environment plus `extra`.
    func spawn(label: String, extra: [String: String]) throws {
        lock.lock()
        let current = generation
        lock.unlock()
        let process = Process()
        let executable = arguments[0]
        process.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : Supervisor.which(executable) ?? executable)
        process.arguments = Array(arguments.dropFirst())
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in current.environment.merging(extra, uniquingKeysWith: { _, new in new }) { variables[key] = value }
        process.environment = variables
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let readers = DispatchGroup()
        try process.run()
        stream(out, prefix: "[\(label)] ", to: STDOUT_FILENO, group: readers)
        stream(err, prefix: "[\(label)] ", to: STDERR_FILENO, group: readers)
        lock.lock()
        workers.append(Worker(label: label, rank: extra["PHALANX_RANK"].flatMap { Int($0) }, generation: current.number, process: process, readers: readers))
        nextLabel = max(nextLabel, (Int(label) ?? 0) + 1)
        lock.unlock()
    }

    /// Copies a worker's pipe to `sink` line by line, each line prefixed. Plain `read`/`write`
    /// with EINTR retried: Foundation's `FileHandle` traps on an interrupted call.
    private func stream(_ pipe: Pipe, prefix: String, to sink: Int32, group: DispatchGroup) {
        group.enter()
        let handle = pipe.fileHandleForReading
        let label = Array(prefix.utf8)
        Thread { [output] in
            let descriptor = handle.fileDescriptor
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                pending += buffer[0..<n]
                while let newline = pending.firstIndex(of: 0x0A) {
                    output.lock()
                    Supervisor.write(label + pending[...newline], to: sink)
                    output.unlock()
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty {
                output.lock()
                Supervisor.write(label + pending + [0x0A], to: sink)
                output.unlock()
            }
            try? handle.close()
            group.leave()
        }.start()
    }

    /// Asks every worker to stop (SIGTERM: they save and exit at the next step), then kills
    /// the ones still running after `grace`.
    func stopAll(grace: Duration = .seconds(30)) {
        lock.lock()
        let first = !stopping
        stopping = true
        let running = workers.filter { $0.process.isRunning }
        lock.unlock()
        guard first else { return }
        say("stopping \(running.count) worker(s)")
        for worker in running { kill(worker.process.processIdentifier, SIGTERM) }
        Thread {
            let deadline = ContinuousClock.now + grace
            while running.contains(where: { $0.process.isRunning }) && ContinuousClock.now < deadline { usleep(50_000) }
            for worker in running where worker.process.isRunning { kill(worker.process.processIdentifier, SIGKILL) }
        }.start()
    }

    /// Waits for every worker; replaces failed ones (as joiners once the job formed) while the
    /// budget allows; starts the job again from its newest checkpoint when a worker found no
    /// live member, or nothing was saved for the stall timeout.
    func supervise(_ budget: Restarts) -> Outcome {
        var restarts = 0, finished = 0, failedBeyondBudget = 0
        var seen = Set<Int32>()
        var progress = Progress(directory: budget.checkpoints)
        while true {
            lock.lock()
            let snapshot = workers
            let stop = stopping
            let current = generation
            lock.unlock()
            var anyRunning = false
            var lost: String?
            for worker in snapshot {
                let pid = worker.process.processIdentifier
                if worker.process.isRunning { anyRunning = true; continue }
                guard seen.insert(pid).inserted else { continue }
                worker.readers.wait()
                // Workers of an earlier incarnation were stopped by this launcher.
                guard worker.generation == current.number else { continue }
                let status = worker.process.terminationStatus
                let signalled = worker.process.terminationReason == .uncaughtSignal
                if status == 0 && !signalled {
                    finished += 1
                    continue
                }
                let how = signalled ? "was killed by signal \(status)" : "exited with status \(status)"
                if !signalled, status == budget.unreachableStatus, budget.checkpoints != nil, !stop {
                    lost = "worker \(worker.label) found no live member of the job"
                } else if stop {
                    say("worker \(worker.label) \(how) while stopping")
                } else if restarts < budget.maxReplacements {
                    restarts += 1
                    lock.lock()
                    let label = "\(nextLabel)"
                    lock.unlock()
                    let rank = current.formed() ? nil : worker.rank
                    let role = rank.map { "as rank \($0) (the job has not formed yet)" } ?? "to join in its place"
                    say("worker \(worker.label) \(how); starting worker \(label) \(role) (restart \(restarts) of \(budget.maxReplacements))")
                    do {
                        try spawn(label: label, extra: rank.map { ["PHALANX_RANK": "\($0)"] } ?? ["PHALANX_JOIN": "1"])
                        anyRunning = true
                    } catch {
                        say("could not start a replacement: \(error)")
                        failedBeyondBudget += 1
                    }
                } else {
                    say("worker \(worker.label) \(how); no restarts left (\(budget.maxReplacements) used)")
                    failedBeyondBudget += 1
                }
            }
            if lost == nil, finished == 0, !stop, let stall = budget.stallTimeout, progress.stalled(for: stall) {
                lost = "no checkpoint was written for \(stall)"
            }
            if let lost, finished == 0, !stop {
                if current.number < budget.maxGenerations {
                    if restartFromCheckpoint(because: lost, budget: budget) {
                        progress = Progress(directory: budget.checkpoints)
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
        lock.lock()
        let stopped = stopping
        let generations = generation.number
        lock.unlock()
        let again = generations > 0 ? ", \(generations) restart(s) from the checkpoints" : ""
        if stopped { return Outcome(code: 130, summary: "stopped; \(finished) worker(s) had finished") }
        if failedBeyondBudget > 0 || finished == 0 {
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
        // SIGKILL, not SIGTERM: a member cut off from its quorum must not save over the
        // checkpoints, and a stopped (SIGSTOP) one must go too.
        for worker in remaining { kill(worker.process.processIdentifier, SIGKILL) }
        for worker in remaining { worker.process.waitUntilExit() }
        do {
            let next = try makeGeneration(old + 1)
            lock.lock()
            generation = next
            lock.unlock()
            try startWorkers()
            return true
        } catch {
            say("could not start the job again: \(error)")
            return false
        }
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

/// Ctrl-C and SIGTERM stop the workers cleanly instead of killing the launcher alone.
enum Signals {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func forward(to supervisor: Supervisor) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { supervisor.stopAll() }
            source.resume()
            sources.append(source)
        }
    }
}
