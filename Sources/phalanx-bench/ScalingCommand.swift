import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench scaling`: the example trainers' throughput at 1, 2 and 4 ranks over our TCP
/// ring and over Open MPI, and the scaling efficiency against one rank.
struct ScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Samples/s of DigitsMLP and SyntheticMLP at 1, 2 and 4 ranks over TCP and MPI, with the scaling efficiency.")

    @Option(help: "World sizes, comma-separated.")
    var ranks = "1,2,4"
    @Option(help: "Steps per run.")
    var steps = 300
    @Option(help: "Also run every row with the trainers' --deterministic-shards N, right after the plain run, and report its samples/s against it (0: not measured).")
    var deterministicShards = 0
    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    struct Trainer {
        let name: String
        let arguments: [String]
    }

    func run() throws {
        let trainers = [
            Trainer(name: "DigitsMLP", arguments: ["--hidden", "128", "--batch-size", "256"]),
            Trainer(name: "SyntheticMLP", arguments: ["--features", "256", "--hidden", "1024", "--layers", "2", "--batch-size", "512"]),
        ]
        let directory = URL(fileURLWithPath: LoopbackJob.executable).deletingLastPathComponent().path
        var rows: [[String: Any]] = []
        for trainer in trainers {
            var single: Double?
            for p in ranks.split(separator: ",").compactMap({ Int($0) }) {
                for backend in p == 1 ? ["single"] : ["tcp", "mpi"] {
                    let rate = try measure(trainer, binary: "\(directory)/\(trainer.name)", ranks: p, backend: backend)
                    if p == 1 { single = rate }
                    let efficiency = single.map { rate / (Double(p) * $0) } ?? .nan
                    var row: [String: Any] = ["trainer": trainer.name, "ranks": p, "backend": backend, "samples_per_s": rate, "efficiency": efficiency]
                    if deterministicShards > 0 {
                        let exact = try measure(trainer, binary: "\(directory)/\(trainer.name)", ranks: p, backend: backend,
                                                extra: ["--deterministic-shards", "\(deterministicShards)"])
                        row["deterministic_shards"] = deterministicShards
                        row["deterministic_samples_per_s"] = exact
                        row["deterministic_ratio"] = exact / rate
                    }
                    if json { emit(row) }
                    rows.append(row)
                }
            }
        }
        if !json {
            print("trainer        ranks  backend  samples/s   efficiency vs 1 rank" + (deterministicShards > 0 ? "   deterministic samples/s (ratio)" : ""))
            for row in rows {
                let exact = (row["deterministic_samples_per_s"] as? Double).map { String(format: "   %9.0f (%.2f)", $0, row["deterministic_ratio"] as? Double ?? .nan) } ?? ""
                // Strings padded in Swift: `%s` takes a C string, not a Swift or NS string.
                let trainer = (row["trainer"] as? String ?? "").padding(toLength: 13, withPad: " ", startingAt: 0)
                let backend = (row["backend"] as? String ?? "").padding(toLength: 7, withPad: " ", startingAt: 0)
                print("\(trainer)  " + String(format: "%5d", row["ranks"] as? Int ?? 0) + "  \(backend)  "
                      + String(format: "%9.0f   %.2f", row["samples_per_s"] as? Double ?? 0, row["efficiency"] as? Double ?? .nan) + exact)
            }
        }
    }

    /// Mean over ranks of each rank's steady-state samples/s (all ranks see the same global rate).
    private func measure(_ trainer: Trainer, binary: String, ranks p: Int, backend: String, extra: [String] = []) throws -> Double {
        let arguments = trainer.arguments + extra + ["--steps", "\(steps)", "--json", "--print-every", "1000000"]
        let done = try TrainerJob.doneEvents(binary: binary, arguments: arguments, ranks: p, backend: backend, label: trainer.name)
        let rates = done.compactMap { $0["samples_per_s"] as? Double }
        return rates.reduce(0, +) / Double(p)
    }
}
