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

    @Option(help: "tcp | tcp-steps | raw-stream | mpi | mpi-ring | mpi-raw, or several separated by commas: they are then timed in alternating batches in the same job, so their ratio is not blurred by the machine's changing load.")
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
    func contender(_ name: String, tcp: inout RingCommunicator?) throws -> (AllReduce, Int, Int) {
        let options = CollectiveOptions(timeout: .seconds(30), segmentBytes: segmentBytes)
        switch name {
        case "raw-stream":
            // Not an all-reduce: rank 0 moves the buffer's size through one loopback TCP stream
            // (RawTCPThroughput's limit) while the others wait, then all meet in a barrier, so
            // the limit is timed between the other backends' batches. Needs the TCP ring.
            guard let ring = tcp else { throw ValidationError("raw-stream must follow tcp in --backend") }
            let stream = ring.rank == 0 ? try OneStreamPair() : nil
            return ({ buffer in
                try stream?.transfer(buffer.count * MemoryLayout<Float>.stride)
                try ring.barrier(options: CollectiveOptions(timeout: .seconds(30)))
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
        for name in names {
            let (run, r, p) = try contender(name, tcp: &tcp)
            runs.append(run)
            (rank, worldSize) = (r, p)
        }
        let largest = (byteSizes.max() ?? 4) / 4
        var buffer = [Float](repeating: 1, count: largest)
        for bytes in byteSizes {
            let count = bytes / 4
            try buffer.withUnsafeMutableBufferPointer { whole in
                let slice = UnsafeMutableBufferPointer(rebasing: whole[0..<count])
                var iterations: [Int] = []
                // The raw stream reduces nothing: the first all-reduce agrees for it.
                let agree = runs[names.firstIndex { $0 != "raw-stream" } ?? 0]
                for (index, run) in runs.enumerated() {
                    // Verify first: every rank contributes rank + 1, so each element sums to p(p+1)/2.
                    for i in 0..<count { slice[i] = Float(rank + 1) }
                    try run(slice)
                    let expected = Float(worldSize * (worldSize + 1) / 2)
                    guard names[index] == "raw-stream" || slice.allSatisfy({ $0 == expected }) else {
                        throw BenchmarkError.wrongResult("\(names[index]) \(bytes) bytes")
                    }
                    // Calibrate on one call's time, agreed by all ranks (sum, then divide).
                    let probeStart = Timing.now()
                    try run(slice)
                    var agreed: [Float] = [Float(min(1000, max(3, Int(seconds / max(Timing.now() - probeStart, 1e-6)))))]
                    try agreed.withUnsafeMutableBufferPointer { try agree($0) }
                    iterations.append(max(1, Int(agreed[0] / Float(worldSize)) / 5))
                    try run(slice)  // warm-up
                }
                // Five rounds; in each, one batch per backend. The best batch of each counts:
                // interference only slows a batch down, and alternating exposes all backends to it.
                var best = [Double](repeating: .infinity, count: runs.count)
                for _ in 0..<5 {
                    for (index, run) in runs.enumerated() {
                        let start = Timing.now()
                        for _ in 0..<iterations[index] { try run(slice) }
                        best[index] = min(best[index], (Timing.now() - start) / Double(iterations[index]))
                    }
                }
                if rank == 0 {
                    for (index, perCall) in best.enumerated() {
                        let algbw = Double(bytes) / perCall / 1e9
                        // The raw stream's figure is the stream's rate, whatever the world size.
                        let busbw = names[index] == "raw-stream" ? algbw : algbw * 2 * Double(worldSize - 1) / Double(worldSize)
                        let line: [String: Any] = [
                            "backend": labels[index], "ranks": worldSize, "bytes": bytes, "time_us": perCall * 1e6,
                            "algbw_GBps": algbw, "busbw_GBps": busbw, "iterations": 5 * iterations[index],
                        ]
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
