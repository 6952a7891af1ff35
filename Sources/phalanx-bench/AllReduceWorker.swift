import ArgumentParser
import CMPI
import Foundation
import Phalanx
@_spi(Benchmarking) import PhalanxCollectives
import PhalanxMPI

/// `phalanx-bench allreduce-worker`: one rank of the all-reduce sweep (started by
/// `phalanx-bench allreduce`, or by hand under `mpirun`). Rank 0 prints one JSON line per size.
struct AllReduceWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce-worker", abstract: "One rank of the all-reduce sweep (see 'allreduce').", shouldDisplay: false)

    @Option(help: "tcp | tcp-steps | raw-duplex | raw-oneway | raw-stream | mpi | mpi-ring | mpi-raw, or several separated by commas: they are then timed in alternating batches in the same job, so their ratio is not blurred by the machine's changing load.")
    var backend: String

    @Option(help: "Labels for the JSON lines, comma-separated, one per backend.")
    var label: String?

    @Option(help: "Message sizes in bytes, comma-separated.")
    var sizes: String

    @Option(help: "Minimum timed seconds per size.")
    var seconds = 0.3

    @Option(help: "Segment size of our ring in bytes (tuning experiments).")
    var segmentBytes = CollectiveOptions.default.segmentBytes

    typealias AllReduce = (UnsafeMutableBufferPointer<Float>) throws -> Void

    /// Makes the all-reduce of one backend; returns it with this rank and the world size.
    func contender(_ name: String, tcp: inout RingCommunicator?, rawRing: inout RawDuplexRing?, largestBytes: Int) throws -> (AllReduce, Int, Int) {
        let options = CollectiveOptions(timeout: .seconds(30), segmentBytes: segmentBytes)
        switch name {
        case "raw-duplex":
            // Not an all-reduce: every rank sends the bytes an all-reduce of this size sends per
            // rank, 2(p − 1)/p of the buffer, to its right neighbour over a plain connection while
            // receiving as many from its left one (RawDuplexRing), so the usual busbw formula
            // gives the raw rate per direction. Needs the TCP ring to exchange ports.
            guard let ring = tcp else { throw ValidationError("raw-duplex must follow tcp in --backend") }
            let raw = try rawRing ?? RawDuplexRing(ring: ring, largestBytes: largestBytes)
            rawRing = raw
            let p = ring.worldSize
            return ({ buffer in
                let source = UnsafeRawBufferPointer(start: buffer.baseAddress.map { UnsafeRawPointer($0) }, count: buffer.count * MemoryLayout<Float>.stride)
                try raw.exchange(source, bytes: source.count * 2 * (p - 1) / p)
            }, ring.rank, ring.worldSize)
        case "raw-stream":
            // Not an all-reduce: rank 0 moves the buffer's size through one loopback TCP stream
            // inside its own process, from and into 4 MiB buffers that stay in cache
            // (RawTCPThroughput's one-stream limit), while the other ranks wait.
            guard let ring = tcp else { throw ValidationError("raw-stream must follow tcp in --backend") }
            let stream = ring.rank == 0 ? try OneStreamPair() : nil
            return ({ buffer in try stream?.transfer(buffer.count * MemoryLayout<Float>.stride) }, ring.rank, ring.worldSize)
        case "raw-oneway":
            // Not an all-reduce: rank 0 sends the buffer to rank 1 over a plain connection
            // (RawDuplexRing's), which receives it into a buffer as large; the others wait.
            guard let ring = tcp else { throw ValidationError("raw-oneway must follow tcp in --backend") }
            let raw = try rawRing ?? RawDuplexRing(ring: ring, largestBytes: largestBytes)
            rawRing = raw
            return ({ buffer in
                try raw.oneWay(UnsafeRawBufferPointer(start: buffer.baseAddress.map { UnsafeRawPointer($0) }, count: buffer.count * MemoryLayout<Float>.stride))
            }, ring.rank, ring.worldSize)
        case "tcp", "tcp-steps":
            // One ring of connections serves both: "tcp-steps" sends the segments step by step
            // instead of interleaved across steps (`RingCommunicator.interleavesSteps`).
            let interleaved = try tcp ?? TCPBootstrap.communicator()
            tcp = interleaved
            let communicator = name == "tcp" ? interleaved : RingCommunicator(transport: interleaved.transport)
            communicator.interleavesSteps = name == "tcp"
            return ({ try communicator.allReduce($0, op: .sum, options: options) }, communicator.rank, communicator.worldSize)
        case "mpi":
            let communicator = try MPICommunicator()
            return ({ try communicator.allReduce($0, op: .sum, options: options) }, communicator.rank, communicator.worldSize)
        case "mpi-ring":
            let communicator = RingCommunicator(transport: try MPITransport())
            return ({ try communicator.allReduce($0, op: .sum, options: options) }, communicator.rank, communicator.worldSize)
        case "mpi-raw":
            let (rank, worldSize) = try MPIRuntime.initialize()
            return ({ buffer in
                let code = MPI_Allreduce(phalanx_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), phalanx_mpi_float(), phalanx_mpi_sum(), phalanx_mpi_comm_world())
                guard code == phalanx_mpi_success() else { throw BenchmarkError.wrongResult("MPI_Allreduce: \(MPIRuntime.message(code))") }
            }, rank, worldSize)
        default:
            throw ValidationError("unknown backend \(name)")
        }
    }

    func run() throws {
        let byteSizes = sizes.split(separator: ",").compactMap { Int($0) }
        let names = backend.split(separator: ",").map(String.init)
        let labels = label.map { $0.split(separator: ",").map(String.init) } ?? names
        guard labels.count == names.count else { throw ValidationError("one label per backend") }
        var runs: [AllReduce] = []
        var rank = 0, worldSize = 1
        var tcp: RingCommunicator?
        var rawRing: RawDuplexRing?
        let largest = (byteSizes.max() ?? 4) / 4
        for name in names {
            let (run, r, p) = try contender(name, tcp: &tcp, rawRing: &rawRing, largestBytes: largest * MemoryLayout<Float>.stride)
            runs.append(run)
            (rank, worldSize) = (r, p)
        }
        var buffer = [Float](repeating: 1, count: largest)
        for bytes in byteSizes {
            let count = bytes / 4
            try buffer.withUnsafeMutableBufferPointer { whole in
                let slice = UnsafeMutableBufferPointer(rebasing: whole[0..<count])
                var iterations: [Int] = []
                // The raw limits reduce nothing: the first all-reduce agrees for them.
                let agree = runs[names.firstIndex { !$0.hasPrefix("raw-") } ?? 0]
                for (index, run) in runs.enumerated() {
                    // Verify first: every rank contributes rank + 1, so each element sums to p(p+1)/2.
                    for i in 0..<count { slice[i] = Float(rank + 1) }
                    try run(slice)
                    let expected = Float(worldSize * (worldSize + 1) / 2)
                    guard names[index].hasPrefix("raw-") || slice.allSatisfy({ $0 == expected }) else {
                        throw BenchmarkError.wrongResult("\(names[index]) \(bytes) bytes")
                    }
                    // Calibrate on the time of one call on rank 0 (the rank that reports, and the
                    // only one that works in the raw stream), handed to all ranks by a sum.
                    let probeStart = Timing.now()
                    try run(slice)
                    let calls = min(1000, max(3, Int(seconds / max(Timing.now() - probeStart, 1e-6))))
                    var agreed: [Float] = [rank == 0 ? Float(calls) : 0]
                    try agreed.withUnsafeMutableBufferPointer { try agree($0) }
                    iterations.append(max(1, Int(agreed[0]) / 5))
                    try run(slice)  // warm-up
                }
                // Five rounds; in each, one batch per backend. The best batch of each counts:
                // interference only slows a batch down, and alternating exposes all backends to it.
                // The machine's busy CPU time over all batches of a backend is summed as well.
                var best = [Double](repeating: .infinity, count: runs.count)
                var busy = [Double?](repeating: 0, count: runs.count)
                for _ in 0..<5 {
                    for (index, run) in runs.enumerated() {
                        let cpuStart = SystemCPU.busySeconds()
                        let start = Timing.now()
                        for _ in 0..<iterations[index] { try run(slice) }
                        best[index] = min(best[index], (Timing.now() - start) / Double(iterations[index]))
                        if let before = cpuStart, let after = SystemCPU.busySeconds(), let sum = busy[index] {
                            busy[index] = sum + after - before
                        } else {
                            busy[index] = nil
                        }
                        // Ranks that idle through a stream's batch wait here, in poll (not in a
                        // busy-polling MPI call of the next batch), so the stream has the CPUs.
                        try tcp?.barrier(options: CollectiveOptions(timeout: .seconds(max(60, Int(seconds * 2)))))
                    }
                }
                if rank == 0 {
                    for (index, perCall) in best.enumerated() {
                        let algbw = Double(bytes) / perCall / 1e9
                        // A stream's figure is its rate, whatever the world size.
                        let stream = names[index] == "raw-stream" || names[index] == "raw-oneway"
                        let busbw = stream ? algbw : algbw * 2 * Double(worldSize - 1) / Double(worldSize)
                        var line: [String: Any] = [
                            "backend": labels[index], "ranks": worldSize, "bytes": bytes, "time_us": perCall * 1e6,
                            "algbw_GBps": algbw, "busbw_GBps": busbw, "iterations": 5 * iterations[index],
                        ]
                        // CPU per byte sent: all ranks together send 2(p − 1) buffers per
                        // all-reduce in the ring's pattern (nominally, for MPI_Allreduce); a raw
                        // stream sends one.
                        let sentPerCall = Double(bytes) * (stream ? 1 : 2 * Double(worldSize - 1))
                        // /proc/stat counts 10 ms ticks: leave the figure out below 10 of them.
                        if let cpu = busy[index], cpu >= 0.1 { line["cpu_ns_per_byte"] = cpu * 1e9 / (sentPerCall * Double(5 * iterations[index])) }
                        if let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) {
                            print(String(decoding: data, as: UTF8.self))
                            fflush(nil)
                        }
                    }
                }
            }
        }
        if names.contains(where: { $0.hasPrefix("mpi") }) { MPIRuntime.finalize() }
    }
}
