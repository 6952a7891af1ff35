import Foundation
import PhalanxTesting

/// Injects faults into the workers of a running launcher: SIGKILL and multi-second SIGSTOPs of
/// random workers (any rank, overlapping), at exponentially distributed intervals.
final class ChaosNemesis: @unchecked Sendable {
    /// Mean seconds between kills (nil: none).
    let killEvery: Double?
    /// Mean seconds between stops (nil: none).
    let stopEvery: Double?
    /// How long a stopped worker stays stopped (seconds, drawn uniformly).
    let stopFor: ClosedRange<Double>
    /// Mean seconds between SIGKILLs of every worker at once (nil: never).
    let killAllEvery: Double?
    /// Mean seconds between SIGKILLs of a whole node: a node agent and its workers (nil: never).
    let killNodeEvery: Double?
    // Guarded by `lock`.
    private let lock = NSLock()
    private var kills = 0
    private var stops = 0
    private var wholeJobKills = 0
    private var nodeKills = 0
    private var random: SystemRandomNumberGenerator

    init(killEvery: Double?, stopEvery: Double?, stopFor: ClosedRange<Double>, killAllEvery: Double? = nil, killNodeEvery: Double? = nil) {
        self.killEvery = killEvery
        self.killNodeEvery = killNodeEvery
        self.stopEvery = stopEvery
        self.stopFor = stopFor
        self.killAllEvery = killAllEvery
        self.random = SystemRandomNumberGenerator()
    }

    /// Faults injected so far (`allAtOnce`: times every worker was killed at once; `nodes`:
    /// whole nodes killed).
    var injected: (kills: Int, stops: Int, allAtOnce: Int, nodes: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (kills, stops, wholeJobKills, nodeKills)
    }

    /// Injects faults into the workers of the launchers `launchers()` lists (one phalanx-run,
    /// or one agent per node) while `running()` holds and until `deadline`. A node kill
    /// SIGKILLs a random launcher with its workers and calls `nodeKilled` with its pid.
    func run(launchers: () -> [Int32], running: () -> Bool, until deadline: Date, nodeKilled: (Int32) -> Void = { _ in }) {
        let start = Date()
        var nextKill = killEvery.map { start.addingTimeInterval(1 + draw($0)) }
        var nextStop = stopEvery.map { start.addingTimeInterval(1 + draw($0)) }
        var nextWholeJobKill = killAllEvery.map { start.addingTimeInterval(1 + draw($0)) }
        var nextNodeKill = killNodeEvery.map { start.addingTimeInterval(2 + draw($0)) }
        while running(), Date() < deadline {
            usleep(20_000)
            let now = Date()
            if let due = nextNodeKill, now >= due, let every = killNodeEvery {
                if let node = launchers().randomElement() {
                    let victims = WorkerProcesses.children(of: node)
                    kill(node, SIGKILL)
                    for victim in victims { kill(victim, SIGKILL) }
                    lock.lock()
                    nodeKills += 1
                    kills += victims.count
                    lock.unlock()
                    nodeKilled(node)
                }
                nextNodeKill = now.addingTimeInterval(draw(every))
            }
            if let due = nextKill, now >= due, let every = killEvery {
                if let victim = launchers().flatMap(WorkerProcesses.children(of:)).randomElement() {
                    kill(victim, SIGKILL)
                    count(kill: true)
                }
                nextKill = now.addingTimeInterval(draw(every))
            }
            if let due = nextWholeJobKill, now >= due, let every = killAllEvery {
                let victims = launchers().flatMap(WorkerProcesses.children(of:))
                for victim in victims { kill(victim, SIGKILL) }
                lock.lock()
                kills += victims.count
                wholeJobKills += victims.isEmpty ? 0 : 1
                lock.unlock()
                nextWholeJobKill = now.addingTimeInterval(draw(every))
            }
            if let due = nextStop, now >= due, let every = stopEvery {
                if let victim = launchers().flatMap(WorkerProcesses.children(of:)).randomElement() {
                    kill(victim, SIGSTOP)
                    count(kill: false)
                    let seconds = Double.random(in: stopFor)
                    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { kill(victim, SIGCONT) }
                }
                nextStop = now.addingTimeInterval(draw(every))
            }
        }
    }

    private func count(kill: Bool) {
        lock.lock()
        if kill { kills += 1 } else { stops += 1 }
        lock.unlock()
    }

    /// An exponentially distributed interval with mean `mean` seconds.
    private func draw(_ mean: Double) -> Double {
        lock.lock()
        defer { lock.unlock() }
        let unit = Double.random(in: Double.ulpOfOne..<1, using: &random)
        return -log(unit) * mean
    }
}
