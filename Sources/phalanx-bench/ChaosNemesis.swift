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
    // Guarded by `lock`.
    private let lock = NSLock()
    private var kills = 0
    private var stops = 0
    private var wholeJobKills = 0
    private var random: SystemRandomNumberGenerator

    init(killEvery: Double?, stopEvery: Double?, stopFor: ClosedRange<Double>, killAllEvery: Double? = nil) {
        self.killEvery = killEvery
        self.stopEvery = stopEvery
        self.stopFor = stopFor
        self.killAllEvery = killAllEvery
        self.random = SystemRandomNumberGenerator()
    }

    /// Faults injected so far (`allAtOnce`: times every worker was killed at once).
    var injected: (kills: Int, stops: Int, allAtOnce: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (kills, stops, wholeJobKills)
    }

    /// Injects faults into the workers of `launcher` until it exits (or `until` passes).
    func run(launcher: Process, until deadline: Date) {
        let start = Date()
        var nextKill = killEvery.map { start.addingTimeInterval(1 + draw($0)) }
        var nextStop = stopEvery.map { start.addingTimeInterval(1 + draw($0)) }
        var nextWholeJobKill = killAllEvery.map { start.addingTimeInterval(1 + draw($0)) }
        while launcher.isRunning, Date() < deadline {
            usleep(20_000)
            let now = Date()
            if let due = nextKill, now >= due, let every = killEvery {
                if let victim = pick(launcher) {
                    kill(victim, SIGKILL)
                    count(kill: true)
                }
                nextKill = now.addingTimeInterval(draw(every))
            }
            if let due = nextWholeJobKill, now >= due, let every = killAllEvery {
                let victims = WorkerProcesses.children(of: launcher.processIdentifier)
                for victim in victims { kill(victim, SIGKILL) }
                lock.lock()
                kills += victims.count
                wholeJobKills += victims.isEmpty ? 0 : 1
                lock.unlock()
                nextWholeJobKill = now.addingTimeInterval(draw(every))
            }
            if let due = nextStop, now >= due, let every = stopEvery {
                if let victim = pick(launcher) {
                    kill(victim, SIGSTOP)
                    count(kill: false)
                    let seconds = Double.random(in: stopFor)
                    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { kill(victim, SIGCONT) }
                }
                nextStop = now.addingTimeInterval(draw(every))
            }
        }
    }

    private func pick(_ launcher: Process) -> Int32? {
        WorkerProcesses.children(of: launcher.processIdentifier).randomElement()
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
