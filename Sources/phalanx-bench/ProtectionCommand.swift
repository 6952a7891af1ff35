import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench protection`: the cost of `PHALANX_WIRE_PROTECTION` on the TCP ring's
/// all-reduce. Jobs with `none`, `mac` and `aead` alternate, round after round, so that the
/// machine's changing load falls on every mode alike; each mode's time is compared with the
/// `none` job of its own round.
struct ProtectionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protection", abstract: "All-reduce time with PHALANX_WIRE_PROTECTION none, mac and aead, in alternating jobs.")

    @Option(help: "Ranks of each job.")
    var ranks = 2

    @Option(help: "Message sizes in bytes, comma-separated.")
    var sizes = "4096,16777216,67108864"

    @Option(help: "Rounds of the three jobs.")
    var rounds = 3

    @Option(help: "Minimum timed seconds per size in each job.")
    var seconds = 0.5

    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    static let modes = ["none", "mac", "aead"]

    func run() throws {
        // times[mode][bytes] = per-round times (µs); busbw likewise.
        var times: [String: [Int: [Double]]] = [:]
        var busbw: [String: [Int: [Double]]] = [:]
        for round in 1...rounds {
            for mode in Self.modes {
                let (job, servers) = try LoopbackJob.start(
                    ranks: ranks, arguments: ["allreduce-worker", "--backend", "tcp", "--label", "tcp ring (\(mode))", "--sizes", sizes, "--seconds", String(seconds)],
                    extra: ["PHALANX_WIRE_PROTECTION": mode, "OPENBLAS_NUM_THREADS": "1"])
                let outputs = withExtendedLifetime(servers) { job.wait(timeout: .seconds(600)) }
                let lines = outputs.flatMap(\.jsonLines).filter { $0["time_us"] != nil }
                if lines.isEmpty {
                    throw ValidationError("the \(mode) job of round \(round) measured nothing: \(outputs.map { $0.stderr.suffix(500) })")
                }
                for line in lines {
                    guard let bytes = line["bytes"] as? Int, let time = line["time_us"] as? Double, let bus = line["busbw_GBps"] as? Double else { continue }
                    times[mode, default: [:]][bytes, default: []].append(time)
                    busbw[mode, default: [:]][bytes, default: []].append(bus)
                    if json { emit(line.merging(["round": round, "protection": mode]) { a, _ in a }) }
                }
            }
        }
        guard !json else { return }
        print("All-reduce over the TCP ring, \(ranks) ranks, \(rounds) rounds of alternating jobs (median over rounds)")
        print("protection       bytes   time (µs)   busbw (GB/s)   time / none (median of per-round ratios)")
        for bytes in sizes.split(separator: ",").compactMap({ Int($0) }) {
            for mode in Self.modes {
                let mine = times[mode]?[bytes] ?? [], base = times["none"]?[bytes] ?? []
                let ratios = zip(mine, base).map { $0 / $1 }
                print(String(format: "%-10@ %11d %11.1f %14.2f %10.2f", mode as NSString, bytes, Timing.median(of: mine), Timing.median(of: busbw[mode]?[bytes] ?? []), Timing.median(of: ratios)))
            }
        }
    }
}
