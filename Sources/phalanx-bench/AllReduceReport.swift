import Foundation
import PhalanxTCP

/// Prints the all-reduce sweep as nccl-tests-style tables and checks the goals.
enum AllReduceReport {
    /// Labels of the paired TCP job's backends (timed in alternating batches of one job).
    static let pairedRing = "paired: phalanx TCP ring"
    static let pairedMPITCP = "paired: MPI_Allreduce (TCP only)"
    static let pairedOneWay = "paired: raw TCP one way (ranks)"
    static let pairedStream = "paired: raw TCP stream (cached)"
    static let pairedDuplex = "paired: raw TCP duplex (ranks)"
    /// Labels of the paired shared-memory job's backends.
    static let pairedMPIBackendShm = "paired: phalanx MPI backend (shm)"
    static let pairedMPIShm = "paired: MPI_Allreduce (shm)"

    static func print(_ lines: [[String: Any]], raw: Double, duplex: Double, system: Double) {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        Swift.print(String(
            format: "raw loopback TCP with the ring's tuning (%@): one stream %.2f GB/s; full duplex (each end sends and receives) %.2f GB/s per direction; one stream with the system's congestion control %.2f GB/s\n",
            DataConnectionTuning.current.congestionControl.joined(separator: ", ") as NSString, raw / 1e9, duplex / 1e9, system / 1e9))
        let timed = lines.filter { $0["time_us"] != nil }
        let rankCounts = Array(Set(timed.compactMap { $0["ranks"] as? Int })).sorted()
        let backends = timed.compactMap { $0["backend"] as? String }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for p in rankCounts {
            Swift.print("\(p) ranks — time (µs) / busbw (GB/s)")
            Swift.print(pad("bytes", 11) + backends.map { pad(String($0.prefix(32)), 34) }.joined())
            let sizes = Array(Set(timed.compactMap { $0["bytes"] as? Int })).sorted()
            for bytes in sizes {
                var row = pad(String(bytes), 11)
                for backend in backends {
                    let match = timed.first { $0["ranks"] as? Int == p && $0["bytes"] as? Int == bytes && $0["backend"] as? String == backend }
                    if let t = match?["time_us"] as? Double, let bus = match?["busbw_GBps"] as? Double {
                        row += pad(String(format: "%10.1f / %6.3f", t, bus), 34)
                    } else {
                        row += pad("—", 34)
                    }
                }
                Swift.print(row)
            }
            Swift.print("")
        }
        // Goals, on 2 ranks, from the paired jobs (both sides timed in alternating batches).
        func value(_ backend: String, _ bytes: Int, _ key: String, ranks: Int = 2) -> Double? {
            timed.first { $0["ranks"] as? Int == ranks && $0["bytes"] as? Int == bytes && $0["backend"] as? String == backend }?[key] as? Double
        }
        let large = Array(Set(timed.compactMap { $0["bytes"] as? Int })).sorted().filter { $0 >= 16 << 20 }
        for bytes in large {
            if let ring = value(pairedRing, bytes, "busbw_GBps"), let mpiTCP = value(pairedMPITCP, bytes, "busbw_GBps") {
                // The raw limits of the same job: the best one-way figure is the goal's limit.
                let oneWay = value(pairedOneWay, bytes, "busbw_GBps") ?? 0
                let stream = value(pairedStream, bytes, "busbw_GBps") ?? 0
                let duplex = value(pairedDuplex, bytes, "busbw_GBps") ?? 0
                let limit = max(oneWay, stream)
                Swift.print(String(
                    format: "2 ranks, %4d MiB: TCP ring busbw %.2f GB/s = %.2f × raw TCP one way, the best of %.2f between the ranks and %.2f in one process (goal ≥ 0.8); %.2f × raw TCP full duplex between the ranks (%.2f GB/s per direction); %.2f × MPI_Allreduce TCP-only (goal ≥ 2) — all paired",
                    bytes >> 20, ring, ring / limit, oneWay, stream, ring / duplex, duplex, ring / mpiTCP))
                let costs = [(pairedRing, "ring"), (pairedOneWay, "one way"), (pairedStream, "one stream in one process"), (pairedDuplex, "full duplex"), (pairedMPITCP, "MPI_Allreduce TCP-only")]
                    .compactMap { label, name in value(label, bytes, "cpu_ns_per_byte").map { String(format: "%@ %.2f", name as NSString, $0) } }
                if !costs.isEmpty { Swift.print("    busy CPU time of the machine (kernel included) per byte sent, ns: " + costs.joined(separator: ", ")) }
            }
            if let ours = value(pairedMPIBackendShm, bytes, "busbw_GBps"), let theirs = value(pairedMPIShm, bytes, "busbw_GBps") {
                Swift.print(String(format: "2 ranks, %4d MiB: MPI backend / MPI_Allreduce (shm), paired = %.2f (goal ≥ 0.95)", bytes >> 20, ours / theirs))
            }
        }
        if let ring = value(pairedRing, 4096, "time_us"), let mpiTCP = value(pairedMPITCP, 4096, "time_us") {
            Swift.print(String(format: "2 ranks, 4 KiB: TCP ring latency / MPI_Allreduce TCP-only, paired = %.2f (goal ≤ 2): %.1f µs vs %.1f µs", ring / mpiTCP, ring, mpiTCP))
        }
    }
}
