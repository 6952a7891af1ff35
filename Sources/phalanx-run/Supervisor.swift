import Foundation

/// The workers of one `phalanx-run`: starts them, prefixes their output, replaces failures.
final class Supervisor: @unchecked Sendable {
    struct Worker {
        let label: String
        let process: Process
        let readers: DispatchGroup
    }

    /// What the job came to.
    struct Outcome {
        let code: Int32
        let summary: String
    }

    private let arguments: [String]
    private let environment: [String: String]
    private let lock = NSLock()
    private var workers: [Worker] = []
    private var stopping = false
    private var nextLabel = 0
    private let output = NSLock()

    init(arguments: [String], environment: [String: String]) {
        self.arguments = arguments
        self.environment = environment
    }

    /// A line of the launcher's own, prefixed so it stands out from the workers'.
    func say(_ text: String) {
        output.lock()
        FileHandle.standardError.write(Data("phalanx-run: \(text)\n".utf8))
        output.unlock()
    }

    /// Starts one worker labelled `label` with the job's environment plus `extra`.
    func spawn(label: String, extra: [String: String]) throws {
        let process = Process()
        let executable = arguments[0]
        process.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : Supervisor.which(executable) ?? executable)
        process.arguments = Array(arguments.dropFirst())
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment.merging(extra, uniquingKeysWith: { _, new in new }) { variables[key] = value }
        process.environment = variables
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let readers = DispatchGroup()
        try process.run()
        stream(out, prefix: "[\(label)] ", to: FileHandle.standardOutput, group: readers)
        stream(err, prefix: "[\(label)] ", to: FileHandle.standardError, group: readers)
        lock.lock()
        workers.append(Worker(label: label, process: process, readers: readers))
        nextLabel = max(nextLabel, (Int(label) ?? 0) + 1)
        lock.unlock()
    }

    private func stream(_ pipe: Pipe, prefix: String, to sink: FileHandle, group: DispatchGroup) {
        group.enter()
        let handle = pipe.fileHandleForReading
        Thread { [output] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = pending[pending.startIndex...newline]
                    output.lock()
                    sink.write(Data(prefix.utf8) + line)
                    output.unlock()
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            if !pending.isEmpty {
                output.lock()
                sink.write(Data(prefix.utf8) + pending + Data([0x0A]))
                output.unlock()
            }
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

    /// Waits for every worker; replaces failed ones as joiners while `maxRestarts` allows.
    func supervise(maxRestarts: Int) -> Outcome {
        var restarts = 0, finished = 0, failedBeyondBudget = 0
        var seen = Set<Int32>()
        while true {
            lock.lock()
            let snapshot = workers
            let stop = stopping
            lock.unlock()
            var anyRunning = false
            for worker in snapshot {
                let pid = worker.process.processIdentifier
                if worker.process.isRunning { anyRunning = true; continue }
                guard seen.insert(pid).inserted else { continue }
                worker.readers.wait()
                let status = worker.process.terminationStatus
                let signalled = worker.process.terminationReason == .uncaughtSignal
                if status == 0 && !signalled {
                    finished += 1
                    continue
                }
                let how = signalled ? "was killed by signal \(status)" : "exited with status \(status)"
                if stop {
                    say("worker \(worker.label) \(how) while stopping")
                } else if restarts < maxRestarts {
                    restarts += 1
                    lock.lock()
                    let label = "\(nextLabel)"
                    lock.unlock()
                    say("worker \(worker.label) \(how); starting worker \(label) to join in its place (restart \(restarts) of \(maxRestarts))")
                    do {
                        try spawn(label: label, extra: ["PHALANX_JOIN": "1"])
                        anyRunning = true
                    } catch {
                        say("could not start a replacement: \(error)")
                        failedBeyondBudget += 1
                    }
                } else {
                    say("worker \(worker.label) \(how); no restarts left (\(maxRestarts) used)")
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
        lock.unlock()
        if stopped { return Outcome(code: 130, summary: "stopped; \(finished) worker(s) had finished") }
        if failedBeyondBudget > 0 || finished == 0 {
            return Outcome(code: 1, summary: "job failed: \(failedBeyondBudget) worker failure(s) beyond the restart budget, \(finished) worker(s) finished")
        }
        return Outcome(code: 0, summary: "job finished: \(finished) worker(s) done, \(restarts) replacement(s) started")
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
