import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench simulate`: runs the membership protocol through many seeded fault schedules
/// in the deterministic simulator and reports seeds, events, violations and time.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the elastic membership protocol through seeded fault schedules (deterministic simulation).")

    @Option(help: "How many schedules (seeds) to run.")
    var seeds = 10_000

    @Option(help: "The first seed.")
    var firstSeed: UInt64 = 1

    @Option(help: "Run only this seed, with its full trace.")
    var replay: UInt64?

    @Option(help: "Break a rule on purpose to show that the checker finds it: noQuorum or syncDamagesReceivers.")
    var mutation: SimulationOptions.Mutation?

    @Option(help: "Worker threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print one JSON line instead of the table.")
    var json = false

    func run() throws {
        if let replay {
            var options = SimulationOptions(seed: replay)
            options.mutation = mutation
            options.trace = true
            let report = Simulation.run(options)
            for line in report.trace { print(line) }
            print(report.summary)
            if !report.violations.isEmpty { throw ExitCode(1) }
            return
        }
        let start = ContinuousClock.now
        let batch = SimulationBatch.run(seeds: firstSeed..<(firstSeed + UInt64(seeds)), mutation: mutation, threads: threads)
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        if json {
            let line: [String: Any] = [
                "benchmark": "simulate", "seeds": seeds, "first_seed": firstSeed, "mutation": mutation?.rawValue ?? "none",
                "events": batch.events, "violations": batch.failures.count, "finished": batch.finished,
                "quorum_lost": batch.quorumLost, "faults": batch.faults, "seconds": seconds,
                "failing_seeds": batch.failures.prefix(20).map(\.seed),
            ]
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("schedules  \(seeds) (seeds \(firstSeed)…\(firstSeed + UInt64(seeds) - 1))\(mutation.map { ", mutation \($0.rawValue)" } ?? "")")
            print("events     \(batch.events) (\(Int(Double(batch.events) / max(seconds, 1e-9))) per second)")
            print("faults     \(batch.faults)")
            print("finished   \(batch.finished), quorum lost (finishing not required) \(batch.quorumLost)")
            print("violations \(batch.failures.count)")
            for failure in batch.failures.prefix(5) { print("  \(failure.summary)\n  replay: phalanx-bench simulate --replay \(failure.seed)\(mutation.map { " --mutation \($0.rawValue)" } ?? "")") }
            print(String(format: "time       %.1f s", seconds))
        }
        if mutation == nil, !batch.failures.isEmpty { throw ExitCode(1) }
    }
}

extension SimulationOptions.Mutation: ExpressibleByArgument {}
