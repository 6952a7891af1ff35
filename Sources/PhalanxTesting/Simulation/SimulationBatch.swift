import Foundation

/// Many seeds run on a few threads: the counts, and the reports of the failing seeds.
public struct SimulationBatch: Sendable {
    /// Events processed over all seeds.
    public var events = 0
    /// Faults injected over all seeds.
    public var faults = 0
    /// Runs that reached the last step.
    public var finished = 0
    /// Runs where the faults left no quorum alive (finishing was not required).
    public var quorumLost = 0
    /// Reports of the runs with a violation, by seed.
    public var failures: [SimulationReport] = []

    /// Runs `seeds` (each `SimulationOptions(seed:)` with `mutation`) on `threads` threads.
    public static func run(seeds: Range<UInt64>, mutation: SimulationOptions.Mutation? = nil, threads: Int = 2,
                           configure: @Sendable (inout SimulationOptions) -> Void = { _ in }) -> SimulationBatch {
        let results = Results()
        let workers = max(1, min(threads, seeds.count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var local = SimulationBatch()
            var seed = seeds.lowerBound + UInt64(worker)
            while seed < seeds.upperBound {
                var options = SimulationOptions(seed: seed)
                options.mutation = mutation
                configure(&options)
                let report = Simulation.run(options)
                local.events += report.events
                local.faults += report.faults.values.reduce(0, +)
                if report.finished { local.finished += 1 }
                if !report.livenessRequired { local.quorumLost += 1 }
                if !report.violations.isEmpty { local.failures.append(report) }
                seed += UInt64(workers)
            }
            results.add(local)
        }
        var total = results.total
        total.failures.sort { $0.seed < $1.seed }
        return total
    }

    /// Collects the workers' counts.
    private final class Results: @unchecked Sendable {
        // Guarded by `lock`.
        private let lock = NSLock()
        private var sum = SimulationBatch()

        func add(_ part: SimulationBatch) {
            lock.lock()
            defer { lock.unlock() }
            sum.events += part.events
            sum.faults += part.faults
            sum.finished += part.finished
            sum.quorumLost += part.quorumLost
            sum.failures += part.failures
        }

        var total: SimulationBatch {
            lock.lock()
            defer { lock.unlock() }
            return sum
        }
    }
}
