import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench metrics`: what recording and serving metrics costs a training step. Each job
/// trains with metrics on (Prometheus registry, endpoint scraped every second) and off in
/// alternating blocks of 10 steps in the same processes; the overhead is the ratio of the
/// medians, median over jobs.
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Steady-state step time with metrics on against off, paired in one elastic job (alternating blocks).")

    @Option(help: "World sizes, comma-separated.")
    var ranks = "2,4"
    @Option(help: "Steps per job (half of them with metrics on).")
    var steps = 1000
    @Option(help: "Workloads as INPUT:HIDDEN:BATCH of the synthetic MLP, comma-separated (the first is DigitsMLP-sized).")
    var workloads = "64:64:64,256:512:256"
    @Option(help: "Seconds between scrapes of each worker's /metrics while metrics are on (0: no scrapes, recording only).")
    var scrapeEvery: Double = 1
    @Option(help: "Jobs per row.")
    var repeats = 3
    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    func run() throws {
        var rows: [[String: Any]] = []
        for workload in workloads.split(separator: ",") {
            let sizes = workload.split(separator: ":").compactMap { Int($0) }
            guard sizes.count == 3 else { throw ValidationError("--workloads takes INPUT:HIDDEN:BATCH, not \(workload)") }
            for p in ranks.split(separator: ",").compactMap({ Int($0) }) {
                var ratios: [Double] = [], ons: [Double] = [], offs: [Double] = [], costs: [Double] = []
                for _ in 0..<max(1, repeats) {
                    let outputs = try LoopbackJob.run(ranks: p, arguments: [
                        "train-worker", "--mode", "metrics", "--steps", "\(steps)", "--input", "\(sizes[0])", "--hidden", "\(sizes[1])", "--batch", "\(sizes[2])",
                        "--scrape-every", "\(scrapeEvery)",
                    ])
                    let done = outputs.compactMap { $0.jsonLines.last { $0["event"] as? String == "done" } }
                    guard done.count == p else { throw ValidationError("a metrics job at \(p) ranks did not finish: \(outputs.map { $0.stderr.suffix(300) })") }
                    guard done.allSatisfy({ $0["recorded_every_on_step"] as? Bool == true }) else {
                        throw ValidationError("the registry did not count every step trained with metrics on: \(done)")
                    }
                    ons.append(done.compactMap { $0["on_step_us"] as? Double }.reduce(0, +) / Double(p))
                    offs.append(done.compactMap { $0["off_step_us"] as? Double }.reduce(0, +) / Double(p))
                    // Every neighbouring on/off pair of blocks, on every rank.
                    ratios += done.flatMap { $0["pair_ratios"] as? [Double] ?? [] }
                    costs += done.compactMap { $0["recording_us_per_step"] as? Double }
                }
                let row: [String: Any] = [
                    "workload": String(workload), "ranks": p, "on_step_us": Timing.median(of: ons), "off_step_us": Timing.median(of: offs),
                    "overhead_pct": (Timing.median(of: ratios) - 1) * 100, "pairs": ratios.count,
                    "overhead_pct_quartiles": [ratios.sorted()[ratios.count / 4], ratios.sorted()[ratios.count * 3 / 4]].map { ($0 - 1) * 100 },
                    "recording_us_per_step": Timing.median(of: costs),
                ]
                if json { emit(row) }
                rows.append(row)
            }
        }
        guard !json else { return }
        print("metrics on (Prometheus registry" + (scrapeEvery > 0 ? ", /metrics scraped every \(scrapeEvery) s" : ", no scrapes") + ") vs off (no-op), alternating blocks of 10 steps in one job")
        print("overhead = median over neighbouring on/off block pairs (all ranks, all jobs) of the ratio of block means")
        print("workload (in:hidden:batch)  ranks  off µs/step  on µs/step  overhead  (quartiles)       pairs  metrics calls µs/step")
        for row in rows {
            let quartiles = (row["overhead_pct_quartiles"] as? [Double] ?? []).map { String(format: "%+.1f%%", $0) }.joined(separator: " … ")
            print(String(format: "%-26@ %6d %12.0f %11.0f %+8.2f%%  %-16@ %6d %10.2f", (row["workload"] as? String ?? "") as NSString, row["ranks"] as? Int ?? 0,
                         row["off_step_us"] as? Double ?? 0, row["on_step_us"] as? Double ?? 0, row["overhead_pct"] as? Double ?? 0,
                         quartiles as NSString, row["pairs"] as? Int ?? 0, row["recording_us_per_step"] as? Double ?? 0))
        }
    }
}
