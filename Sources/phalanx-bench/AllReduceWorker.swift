import ArgumentParser
import CMPI
import Foundation
import Phalanx
import PhalanxMPI

/// `phalanx-bench allreduce-worker`: one rank of the all-reduce sweep (started by
/// `phalanx-bench allreduce`, or by hand under `mpirun`). Rank 0 prints one JSON line per size.
struct AllReduceWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce-worker", abstract: "One rank of the all-reduce sweep (see 'allreduce').", shouldDisplay: false)

    @Option(help: "tcp | mpi | mpi-ring | mpi-raw")
    var backend: String

    @Option(help: "Label for the JSON lines (e.g. 'MPI_Allreduce (TCP only)').")
    var label: String?

    @Option(help: "Message sizes in bytes, comma-separated.")
    var sizes: String

    @Option(help: "Minimum timed seconds per size.")
    var seconds = 0.3

    func run() throws {
        let byteSizes = sizes.split(separator: ",").compactMap { Int($0) }
        let run: (UnsafeMutableBufferPointer<Float>) throws -> Void
        let rank: Int, worldSize: Int
        switch backend {
        case "tcp":
            let communicator = try TCPBootstrap.communicator()
            (rank, worldSize) = (communicator.rank, communicator.worldSize)
            run = { try communicator.allReduce($0, op: .sum, options: CollectiveOptions(timeout: .seconds(30))) }
        case "mpi":
            let communicator = try MPICommunicator()
            (rank, worldSize) = (communicator.rank, communicator.worldSize)
            run = { try communicator.allReduce($0, op: .sum, options: CollectiveOptions(timeout: .seconds(30))) }
        case "mpi-ring":
            let communicator = RingCommunicator(transport: try MPITransport())
            (rank, worldSize) = (communicator.rank, communicator.worldSize)
            run = { try communicator.allReduce($0, op: .sum, options: CollectiveOptions(timeout: .seconds(30))) }
        case "mpi-raw":
            (rank, worldSize) = try MPIRuntime.initialize()
            run = { buffer in
                let code = MPI_Allreduce(phalanx_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), phalanx_mpi_float(), phalanx_mpi_sum(), phalanx_mpi_comm_world())
                guard code == phalanx_mpi_success() else { throw BenchmarkError.wrongResult("MPI_Allreduce: \(MPIRuntime.message(code))") }
            }
        default:
            throw ValidationError("unknown backend \(backend)")
        }
        let largest = (byteSizes.max() ?? 4) / 4
        var buffer = [Float](repeating: 1, count: largest)
        for bytes in byteSizes {
            let count = bytes / 4
            try buffer.withUnsafeMutableBufferPointer { whole in
                let slice = UnsafeMutableBufferPointer(rebasing: whole[0..<count])
                // Verify first: every rank contributes rank + 1, so each element sums to p(p+1)/2.
                for i in 0..<count { slice[i] = Float(rank + 1) }
                try run(slice)
                let expected = Float(worldSize * (worldSize + 1) / 2)
                guard slice.allSatisfy({ $0 == expected }) else { throw BenchmarkError.wrongResult("\(backend) \(bytes) bytes") }
                // Calibrate the iteration count on rank 0's timing of one call, agreed by all ranks.
                let probeStart = Timing.now()
                try run(slice)
                var iterations: [Float] = [Float(min(1000, max(3, Int(seconds / max(Timing.now() - probeStart, 1e-6)))))]
                try iterations.withUnsafeMutableBufferPointer { try run($0) }  // sum, then divide: same on every rank
                let n = Int(iterations[0] / Float(worldSize))
                try run(slice)  // warm-up
                // The best of five batches: the machine is shared, and interference only slows a
                // batch down. Every rank runs the same batches, so they stay in step.
                var perCall = Double.infinity
                let batch = max(1, n / 5)
                for _ in 0..<5 {
                    let start = Timing.now()
                    for _ in 0..<batch { try run(slice) }
                    perCall = min(perCall, (Timing.now() - start) / Double(batch))
                }
                if rank == 0 {
                    let algbw = Double(bytes) / perCall / 1e9
                    let busbw = algbw * 2 * Double(worldSize - 1) / Double(worldSize)
                    let line: [String: Any] = [
                        "backend": label ?? backend, "ranks": worldSize, "bytes": bytes, "time_us": perCall * 1e6,
                        "algbw_GBps": algbw, "busbw_GBps": busbw, "iterations": 5 * batch,
                    ]
                    if let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) {
                        print(String(decoding: data, as: UTF8.self))
                        fflush(nil)
                    }
                }
            }
        }
        if backend.hasPrefix("mpi") { MPIRuntime.finalize() }
    }
}
