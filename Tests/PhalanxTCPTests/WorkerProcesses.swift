import Foundation

/// Starts the package's own executables as separate processes on loopback, collects their
/// output to EOF, and stops them by PID. Every wait is bounded.
final class WorkerProcesses: @unchecked Sendable {
    struct Output {
        let rank: Int
        let status: Int32
        let stdout: String
        let stderr: String
        /// The last JSON line printed on stdout, parsed.
        var result: [String: Any] {
            for line in stdout.split(separator: "\n").reversed() {
                if let data = line.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] { return object }
            }
            return [:]
        }
    }

    /// The directory that holds the built executables (next to the test bundle).
    static var binaryDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["PHALANX_BIN_DIR"] { return URL(fileURLWithPath: override) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("phalanx-check").path) { return url }
        }
        return Bundle.main.bundleURL.deletingLastPathComponent()
    }

    let processes: [Process]
    private let outputs: [Pipe]
    private let errors: [Pipe]
    private let collected = NSLock()
    private var stdoutText: [Int: String] = [:]
    private var stderrText: [Int: String] = [:]
    private let readers = DispatchGroup()

    /// Starts `count` copies of `executable` with `arguments`; `environment(rank)` adds variables.
    init(executable: String, arguments: [String], count: Int, environment: (Int) -> [String: String]) throws {
        var processes: [Process] = [], outputs: [Pipe] = [], errors: [Pipe] = []
        for rank in 0..<count {
            let process = Process()
            process.executableURL = WorkerProcesses.binaryDirectory.appendingPathComponent(executable)
            process.arguments = arguments
            var variables = ProcessInfo.processInfo.environment
            for (key, value) in environment(rank) { variables[key] = value }
            process.environment = variables
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            processes.append(process)
            outputs.append(out)
            errors.append(err)
        }
        self.processes = processes
        self.outputs = outputs
        self.errors = errors
        for (rank, process) in processes.enumerated() {
            try process.run()
            readInBackground(outputs[rank], rank: rank, isError: false)
            readInBackground(errors[rank], rank: rank, isError: true)
        }
    }

    private func readInBackground(_ pipe: Pipe, rank: Int, isError: Bool) {
        readers.enter()
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            // Read to EOF in pieces so that callers can watch output while the process runs.
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                let text = String(decoding: data, as: UTF8.self)
                collected.lock()
                if isError { stderrText[rank, default: ""] += text } else { stdoutText[rank, default: ""] += text }
                collected.unlock()
            }
            readers.leave()
        }.start()
    }

    /// The PID of rank `rank`.
    func pid(_ rank: Int) -> Int32 { processes[rank].processIdentifier }

    /// Sends `signal` to rank `rank`.
    func signal(_ rank: Int, _ signal: Int32) { kill(processes[rank].processIdentifier, signal) }

    /// Waits until every process has exited, at most `timeout`; kills the rest by PID then.
    /// Returns each rank's output.
    func wait(timeout: Duration) -> [Output] {
        let deadline = ContinuousClock.now + timeout
        while processes.contains(where: { $0.isRunning }) && ContinuousClock.now < deadline {
            usleep(20_000)
        }
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
        }
        for process in processes { process.waitUntilExit() }
        _ = readers.wait(timeout: .now() + 10)
        collected.lock()
        defer { collected.unlock() }
        return processes.indices.map { rank in
            Output(rank: rank, status: processes[rank].terminationStatus, stdout: stdoutText[rank] ?? "", stderr: stderrText[rank] ?? "")
        }
    }

    /// Waits until every rank in `ranks` has printed a line containing `marker`, at most `timeout`.
    func waitForMarker(_ marker: String, ranks: [Int], timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            collected.lock()
            let all = ranks.allSatisfy { stdoutText[$0]?.contains(marker) == true }
            collected.unlock()
            if all { return true }
            usleep(10_000)
        }
        return false
    }
}
