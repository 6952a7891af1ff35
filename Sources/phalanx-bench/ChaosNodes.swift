import Foundation

/// The node agents of a chaos run on one machine (`phalanx-run --nnodes` on loopback, one agent
/// per "node", a shared checkpoint directory): starts them, replaces killed nodes with new ones,
/// and says how the job ended.
final class ChaosNodes: @unchecked Sendable {
    private let executable: URL
    private let arguments: [String]
    private let sink: FileHandle?
    // Guarded by `lock`.
    private let lock = NSLock()
    private var agents: [Process] = []
    private var killed: Set<Int32> = []
    private var pendingReplacements = 0

    /// Agents running `executable` (phalanx-run) with `arguments`, output to `sink`.
    init(executable: URL, arguments: [String], sink: FileHandle?) {
        self.executable = executable
        self.arguments = arguments
        self.sink = sink
    }

    /// Starts one more node agent.
    /// - Throws: when it cannot be started.
    func start() throws {
        let agent = Process()
        agent.executableURL = executable
        agent.arguments = arguments
        agent.standardOutput = sink
        agent.standardError = sink
        try agent.run()
        lock.lock()
        agents.append(agent)
        lock.unlock()
    }

    /// The pids of the agents still running.
    var live: [Int32] {
        lock.lock()
        defer { lock.unlock() }
        return agents.filter(\.isRunning).map(\.processIdentifier)
    }

    /// Whether an agent runs or a replacement is due.
    var running: Bool {
        lock.lock()
        defer { lock.unlock() }
        return pendingReplacements > 0 || agents.contains(where: \.isRunning)
    }

    /// Whether an agent that was not killed finished successfully (the job is done).
    private var jobDone: Bool {
        lock.lock()
        defer { lock.unlock() }
        return agents.contains { !$0.isRunning && !killed.contains($0.processIdentifier) && $0.terminationStatus == 0 }
    }

    /// Records that the nemesis killed node `pid` and starts a new node after `delay` seconds
    /// (unless the job is done by then).
    func replace(_ pid: Int32, after delay: Double) {
        lock.lock()
        killed.insert(pid)
        pendingReplacements += 1
        lock.unlock()
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
            if !jobDone { try? start() }
            lock.lock()
            pendingReplacements -= 1
            lock.unlock()
        }
    }

    /// Kills every agent left (after a timeout).
    func terminate() {
        for pid in live { kill(pid, SIGTERM) }
    }

    /// The worst exit status among the agents the nemesis did not kill (0 when all succeeded).
    var status: Int32 {
        lock.lock()
        defer { lock.unlock() }
        let judged = agents.filter { !killed.contains($0.processIdentifier) }
        guard !judged.isEmpty else { return 1 }
        return judged.map { $0.isRunning ? 124 : $0.terminationStatus }.max() ?? 1
    }
}
