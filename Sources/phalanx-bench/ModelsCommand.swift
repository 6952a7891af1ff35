import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench models`: DigitsCNN and TinyGPT (the convolution and attention examples):
/// samples/s at 1, 2 and 4 ranks over our TCP ring with the all-reduce overlapping backward and
/// not, each rank's compute-only time per step (forward, backward, update), the scaling
/// efficiency; and the single-process step time against the same model in PyTorch with one
/// thread (`Benchmarks/pytorch_models.py`), paired: the two alternate, round after round.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "DigitsCNN and TinyGPT: samples/s at 1, 2, 4 ranks with overlap on and off, compute-only step time, and single-process step time against PyTorch (one thread, paired).")

    @Option(help: "World sizes, comma-separated.")
    var ranks = "1,2,4"
    @Option(help: "Steps per DigitsCNN run.")
    var cnnSteps = 300
    @Option(help: "Steps per TinyGPT run.")
    var gptSteps = 60
    @Option(help: "Runs of each multi-rank row, overlap off and on alternating; the rows report medians.")
    var repeats = 5
    @Option(help: "Paired rounds against PyTorch (0: no comparison).")
    var rounds = 3
    @Option(help: "The PyTorch script (run with python3).")
    var pytorchScript = "Benchmarks/pytorch_models.py"
    @Option(help: "Models, comma-separated.")
    var models = "DigitsCNN,TinyGPT"
    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    struct Model {
        let name: String
        let arguments: [String]
        let steps: Int
        let batchSize: Int
    }

    func run() throws {
        let all = [
            Model(name: "DigitsCNN", arguments: [], steps: cnnSteps, batchSize: 64),
            Model(name: "TinyGPT", arguments: ["--sample-length", "0"], steps: gptSteps, batchSize: 64),
        ]
        let chosen = Set(models.split(separator: ",").map(String.init))
        let directory = URL(fileURLWithPath: LoopbackJob.executable).deletingLastPathComponent().path
        var rows: [[String: Any]] = []
        for model in all where chosen.contains(model.name) {
            let binary = "\(directory)/\(model.name)"
            var single: Double?
            for p in ranks.split(separator: ",").compactMap({ Int($0) }) {
                // Overlap off and on alternate, so that both meet the same load on a shared machine.
                let settings = p == 1 ? ["off"] : ["off", "on"]
                var runs: [String: [Run]] = [:]
                for _ in 0..<(p == 1 ? 1 : max(repeats, 1)) {
                    for overlap in settings { runs[overlap, default: []].append(try measure(model, binary: binary, ranks: p, overlap: overlap)) }
                }
                for overlap in settings {
                    let all = runs[overlap] ?? []
                    let rates = all.map(\.samplesPerSecond).sorted()
                    let rate = rates[rates.count / 2]
                    let compute = all.map(\.computeMs).sorted()[all.count / 2], wait = all.map(\.waitMs).sorted()[all.count / 2]
                    if p == 1 { single = rate }
                    let row: [String: Any] = [
                        "bench": "models", "model": model.name, "ranks": p, "overlap": overlap, "batch_size": model.batchSize, "runs": all.count,
                        "samples_per_s": rate, "samples_per_s_runs": all.map(\.samplesPerSecond), "compute_ms_per_step": compute, "reduce_wait_ms_per_step": wait,
                        "efficiency": single.map { rate / (Double(p) * $0) } ?? Double.nan,
                        // What samples/s would be if the all-reduce were free: the slowest rank's compute.
                        "compute_only_samples_per_s": Double(model.batchSize) / (compute / 1000),
                    ]
                    if json { emit(row) }
                    rows.append(row)
                }
            }
            if rounds > 0 { rows.append(try paired(model, binary: binary)) }
        }
        if !json { table(rows) }
    }

    struct Run {
        let samplesPerSecond: Double
        let computeMs: Double
        let waitMs: Double
    }

    /// One run: the ranks' mean samples/s, the slowest rank's compute time per step and the
    /// mean all-reduce wait after backward.
    private func measure(_ model: Model, binary: String, ranks p: Int, overlap: String) throws -> Run {
        let arguments = model.arguments + ["--steps", "\(model.steps)", "--batch-size", "\(model.batchSize)", "--json", "--print-every", "1000000", "--overlap", overlap]
        let done = try TrainerJob.doneEvents(binary: binary, arguments: arguments, ranks: p, backend: p == 1 ? "single" : "tcp", label: model.name, timeout: .seconds(900))
        let rates = done.compactMap { $0["samples_per_s"] as? Double }
        let compute = done.compactMap { $0["compute_ms_per_step"] as? Double }.max() ?? .nan
        let waits = done.compactMap { $0["reduce_wait_ms_per_step"] as? Double }
        return Run(samplesPerSecond: rates.reduce(0, +) / Double(p), computeMs: compute, waitMs: waits.reduce(0, +) / Double(max(waits.count, 1)))
    }

    /// Single-process step time, Phalanx then PyTorch, `rounds` times; the median of the ratios.
    private func paired(_ model: Model, binary: String) throws -> [String: Any] {
        var phalanx: [Double] = [], torch: [Double] = []
        for _ in 0..<rounds {
            phalanx.append(1000 * Double(model.batchSize) / (try measure(model, binary: binary, ranks: 1, overlap: "off")).samplesPerSecond)
            let output = try WorkerProcesses(
                executable: "/usr/bin/env",
                arguments: ["python3", pytorchScript, "--model", model.name, "--steps", "\(model.steps)", "--batch-size", "\(model.batchSize)"], count: 1
            ) { _ in ["OMP_NUM_THREADS": "1"] }.wait(timeout: .seconds(900))[0]
            guard let ms = output.jsonLines.first?["ms_per_step"] as? Double else { throw ValidationError("PyTorch \(model.name) failed: \(output.stderr.suffix(600))") }
            torch.append(ms)
        }
        let ratios = zip(torch, phalanx).map { $0 / $1 }.sorted()
        let row: [String: Any] = [
            "bench": "models-vs-pytorch", "model": model.name, "batch_size": model.batchSize, "rounds": rounds, "threads": 1,
            "phalanx_ms_per_step": phalanx, "pytorch_ms_per_step": torch, "pytorch_over_phalanx_median": ratios[ratios.count / 2],
        ]
        if json { emit(row) }
        return row
    }

    private func table(_ rows: [[String: Any]]) {
        print("model      ranks  overlap  samples/s (median)  efficiency  compute ms/step  wait ms/step  compute-only samples/s")
        for row in rows where row["bench"] as? String == "models" {
            // Strings padded in Swift: `%s` takes a C string, not a Swift or NS string.
            let model = (row["model"] as? String ?? "").padding(toLength: 9, withPad: " ", startingAt: 0)
            let overlap = (row["overlap"] as? String ?? "").padding(toLength: 7, withPad: " ", startingAt: 0)
            print("\(model)  " + String(format: "%5d", row["ranks"] as? Int ?? 0) + "  \(overlap)  "
                  + String(format: "%18.0f  %10.2f  %15.2f  %12.2f  %10.0f", row["samples_per_s"] as? Double ?? 0, row["efficiency"] as? Double ?? .nan,
                           row["compute_ms_per_step"] as? Double ?? .nan, row["reduce_wait_ms_per_step"] as? Double ?? .nan, row["compute_only_samples_per_s"] as? Double ?? .nan))
        }
        for row in rows where row["bench"] as? String == "models-vs-pytorch" {
            let phalanx = (row["phalanx_ms_per_step"] as? [Double] ?? []).map { String(format: "%.2f", $0) }.joined(separator: " ")
            let torch = (row["pytorch_ms_per_step"] as? [Double] ?? []).map { String(format: "%.2f", $0) }.joined(separator: " ")
            print("\(row["model"] ?? ""): one process, one thread: Phalanx ms/step [\(phalanx)], PyTorch [\(torch)], PyTorch/Phalanx median \(String(format: "%.2f", row["pytorch_over_phalanx_median"] as? Double ?? .nan))")
        }
    }
}
