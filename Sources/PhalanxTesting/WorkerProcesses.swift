import Foundation

/// Starts executables (a trainer, `phalanx-check`, `mpirun`) as separate processes for
/// multi-process tests, collects their output to EOF while they run, and stops them by PID.
/// Every wait is bounded.
public final class WorkerProcesses: @unchecked Sendable {
    /// What one process printed and how it ended.
    public struct Output: @unchecked Sendable {
        /// The index of the process (its rank when each process is one rank).
        public let rank: Int
        /// The exit status (or signal number when killed).
        public let status: Int32
        /// Everything printed on standard output.
        public let stdout: String
        /// Everything printed on standard error.
        public let stderr: String
        /// Every line of standard output that parses as a JSON object.
        public var jsonLines: [[String: Any]] {
            stdout.split(separator: "\n").compactMap { line in
                line.data(using: .utf8).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            }
        }
        /// The last JSON line printed on stdout, parsed.
        public var result: [String: Any] {
            for line in stdout.split(separator: "\n").reversed() {
                if let data = line.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] { return object }
            }
            return [:]
        }
    }

    /// The directory that holds the package's built executables: `PHALANX_BIN_DIR`, else the
    /// nearest directory above the running test bundle that contains `phalanx-check`.
    public static var binaryDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["PHALANX_BIN_DIR"] { return URL(fileURLWithPath: override) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("phalanx-check").path) { return url }
        }
        return Bundle.main.bundleURL.deletingLastPathComponent()
    }

    /// The processes, in start order.
    public let processes: [Process]
    private let outputs: [Pipe]
    private let errors: [Pipe]
    private let collected = NSLock()
    private var stdoutText: [Int: String] = [:]
    private var stderrText: [Int: String] = [:]
    private let readers = DispatchGroup()

    /// Starts `count` copies of `executable` (a name in `binaryDirectory`, or an absolute path)
    /// with `arguments`; `environment(rank)` adds variables to this process's environment.
    /// - Throws: if an executable cannot be started.
    public init(executable: String, arguments: [String], count: Int, environment: (Int) -> [String: String]) throws {
        var processes: [Process] = [], outputs: [Pipe] = [], errors: [Pipe] = []
        for rank in 0..<count {
            let process = Process()
            process.executableURL = executable.hasPrefix("/") ? URL(fileURLWithPath: executable) : WorkerProcesses.binaryDirectory.appendingPathComponent(executable)
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

    /// The live children of process `pid` (a launcher's workers), from /proc.
    public static func children(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The PID of rank `rank`.
    public func pid(_ rank: Int) -> Int32 { processes[rank].processIdentifier }

    /// Sends `signal` to rank `rank`.
    public func signal(_ rank: Int, _ signal: Int32) { kill(processes[rank].processIdentifier, signal) }

    /// Waits until every process has exited, at most `timeout`; kills the rest by PID then.
    /// Returns each rank's output.
    public func wait(timeout: Duration) -> [Output] {
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

    /// What rank `rank` has printed on standard output so far.
    public func stdoutSoFar(_ rank: Int) -> String {
        collected.lock()
        defer { collected.unlock() }
        return stdoutText[rank] ?? ""
    }

    /// What rank `rank` has printed on standard error so far.
    public func stderrSoFar(_ rank: Int) -> String {
        collected.lock()
        defer { collected.unlock() }
        return stderrText[rank] ?? ""
    }

    /// Waits until rank `rank` has printed `marker` at least `count` times, at most `timeout`.
    public func waitForMarker(_ marker: String, count: Int, rank: Int, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stdoutSoFar(rank).components(separatedBy: marker).count - 1 >= count { return true }
            usleep(10_000)
        }
        return false
    }

    /// Waits until every rank in `ranks` has printed a line containing `marker`, at most `timeout`.
    public func waitForMarker(_ marker: String, ranks: [Int], timeout: Duration) -> Bool {
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
