import Foundation

/// The commands of `docs/launching.md`, run by the tests exactly as the page shows them: each
/// command block follows a `<!-- test: NAME -->` line. A test runs a block with bash in a fresh
/// directory where `.build/release` is the directory of the built executables and `Examples`
/// the repository's, as the leader of a process group (so that a timeout stops everything it
/// started),
/// with some fixed port numbers and host names of the page swapped (free ports, this machine).
public struct LaunchingPage: Sendable {
    /// The page's text.
    public let text: String

    /// Reads the page of the repository that holds `testFile` (pass `#filePath`).
    /// - Throws: when the page cannot be read.
    public init(repositoryOf testFile: String = #filePath) throws {
        var url = URL(fileURLWithPath: testFile)
        while url.path != "/", !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        repository = url
        text = try String(contentsOf: url.appendingPathComponent("docs/launching.md"), encoding: .utf8)
    }

    /// The repository's root directory.
    public let repository: URL

    /// A failure to find a block or to run it.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// The command block marked `<!-- test: name -->`.
    /// - Throws: `Failure` when there is no such block.
    public func command(_ name: String) throws -> String {
        let lines = text.components(separatedBy: "\n")
        guard let marker = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "<!-- test: \(name) -->" }),
              let open = lines[(marker + 1)...].firstIndex(where: { $0.hasPrefix("```") }),
              let close = lines[(open + 1)...].firstIndex(where: { $0.hasPrefix("```") })
        else { throw Failure(description: "docs/launching.md has no command block marked '<!-- test: \(name) -->'") }
        return lines[(open + 1)..<close].joined(separator: "\n")
    }

    /// A fresh directory laid out like a checkout after `swift build -c release`.
    /// - Throws: when it cannot be made.
    public func scratchDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "phalanx-launching-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/.build", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/.build/release", withDestinationPath: WorkerProcesses.binaryDirectory.path)
        try FileManager.default.createSymbolicLink(atPath: directory + "/Examples", withDestinationPath: repository.appendingPathComponent("Examples").path)
        return directory
    }

    /// Starts block `name` with bash (`set -e`) in `directory` (a `scratchDirectory()`), each key
    /// of `replacing` (a port number, a host name) replaced by its value, `environment` added.
    /// Stop it with `finish`.
    /// - Throws: `Failure` when there is no such block, or when bash cannot start.
    public func start(_ name: String, in directory: String, replacing: [String: String] = [:], environment: [String: String] = [:]) throws -> Running {
        var script = try command(name)
        for (page, here) in replacing { script = script.replacingOccurrences(of: page, with: here) }
        // pip puts torchrun beside the interpreter's scripts, which a pyenv or venv PATH may
        // not show before a rehash: that directory comes first.
        var variables = environment
        if let scripts = Self.pythonScripts {
            variables["PATH"] = scripts + ":" + (environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        }
        let processes = try WorkerProcesses(
            executable: "/bin/bash", arguments: ["-e", "-c", "cd '\(directory)'\n" + script], count: 1
        ) { [variables] _ in variables }
        return Running(script: script, processes: processes)
    }

    /// The directory of `python3`'s installed scripts (torchrun's), if Python answers.
    static let pythonScripts: String? = {
        let query = try? WorkerProcesses(
            executable: "/usr/bin/env", arguments: ["python3", "-c", "import sysconfig; print(sysconfig.get_path('scripts'))"], count: 1,
            environment: { _ in [:] })
        guard let output = query?.wait(timeout: .seconds(30)).first, output.status == 0 else { return nil }
        let path = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? nil : path
    }()

    /// A block being run.
    public struct Running: Sendable {
        /// The script as run (ports replaced).
        public let script: String
        /// Its bash process (leader of its own process group, as Foundation's `Process` starts it).
        public let processes: WorkerProcesses

        /// Waits at most `timeout` for it to end, then kills its whole session by PID; returns
        /// what it printed and its status.
        /// Its descendants that left the group (a launcher's workers in sessions of their own)
        /// get SIGTERM, then SIGKILL 5 s later.
        public func finish(timeout: Duration) -> WorkerProcesses.Output {
            let deadline = ContinuousClock.now + timeout
            while processes.processes[0].isRunning, ContinuousClock.now < deadline { usleep(20_000) }
            let leader = processes.pid(0)
            if processes.processes[0].isRunning {
                let tree = Self.descendants(of: leader)
                kill(-leader, SIGTERM)
                for pid in tree { kill(pid, SIGTERM) }
                let grace = ContinuousClock.now + .seconds(5)
                while processes.processes[0].isRunning, ContinuousClock.now < grace { usleep(20_000) }
                for pid in tree { kill(pid, SIGKILL) }
            }
            kill(-leader, SIGKILL)
            return processes.wait(timeout: .seconds(10))[0]
        }

        /// Every live descendant of `pid`, from /proc (bounded by the number of processes).
        static func descendants(of pid: Int32) -> [Int32] {
            var found: [Int32] = [], queue = [pid]
            while let next = queue.popLast(), found.count < 10_000 {
                let children = WorkerProcesses.children(of: next)
                found += children
                queue += children
            }
            return found
        }
    }
}
