import ArgumentParser
import Foundation
import Phalanx
import PhalanxMPI
import PhalanxTesting

/// `phalanx-check`: runs collective checks on every rank of a job (launched by `mpirun`,
/// `phalanx-run`, torchrun-style variables or by hand) and prints one JSON line per rank.
/// The multi-process tests drive it; users can run it to validate a cluster.
@main
struct PhalanxCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phalanx-check",
        abstract: "Collective correctness checks, one JSON result line per rank.")

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case conformance, checksum, mismatch, loop
    }

    @Argument(help: "conformance | checksum | mismatch | loop")
    var mode: Mode

    @Option(help: "Backend: tcp (our ring over TCP), mpi (Open MPI's collectives) or mpi-ring (our ring over MPI point-to-point).")
    var backend = "tcp"

    @Option(help: "Largest element count in the conformance grid.")
    var largeCount = 1_000_003

    @Option(help: "Elements per all-reduce in loop mode.")
    var elements = 1 << 20

    @Option(help: "Iterations in loop mode (0: until killed).")
    var iterations = 0

    @Option(help: "Collective timeout in milliseconds.")
    var timeoutMs = 2000

    func run() throws {
        let started = ContinuousClock.now
        var result: [String: Any] = [:]
        do {
            let communicator = try makeCommunicator()
            result["rank"] = communicator.rank
            result["world_size"] = communicator.worldSize
            let options = CollectiveOptions(timeout: .milliseconds(timeoutMs))
            switch mode {
            case .conformance:
                let failures = try ConformanceSuite.run(
                    on: communicator, counts: ConformanceSuite.counts(worldSize: communicator.worldSize, largeCount: largeCount), options: options)
                result["failures"] = failures
                result["ok"] = failures.isEmpty
            case .checksum:
                result["checksum"] = String(try ConformanceSuite.repeatedAllReduceChecksum(on: communicator, options: options), radix: 16)
                result["ok"] = true
            case .mismatch:
                // Rank 1 passes one element fewer than the others.
                var buffer = [Float](repeating: 1, count: communicator.rank == 1 ? 999 : 1000)
                try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: options) }
                result["ok"] = true
            case .loop:
                var buffer = [Float](repeating: 1, count: elements)
                var done = 0
                printJSON(["rank": communicator.rank, "ready": true])
                while iterations == 0 || done < iterations {
                    try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .average, options: options) }
                    done += 1
                }
                result["iterations"] = done
                result["ok"] = true
            }
        } catch let error as CollectiveError {
            result["ok"] = false
            result["error"] = error.description
            result["code"] = error.code.description
            result["peer"] = error.peer ?? -1
            result["rank"] = error.rank
        } catch {
            result["ok"] = false
            result["error"] = "\(error)"
        }
        result["elapsed_ms"] = Double((ContinuousClock.now - started).components.attoseconds) / 1e15
            + Double((ContinuousClock.now - started).components.seconds) * 1000
        printJSON(result)
        if backend.hasPrefix("mpi") && result["ok"] as? Bool == true { MPIRuntime.finalize() }
        if result["ok"] as? Bool != true { throw ExitCode(1) }
    }

    func makeCommunicator() throws -> any Communicator {
        switch backend {
        case "tcp": return try TCPBootstrap.communicator()
        case "mpi": return try MPICommunicator()
        case "mpi-ring": return RingCommunicator(transport: try MPITransport())
        default: throw ValidationError("unknown backend \(backend)")
        }
    }

    func printJSON(_ object: [String: Any]) {
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), let text = String(data: data, encoding: .utf8) {
            print(text)
            fflush(nil)  // flush every stream: the tests read lines while the process runs
        }
    }
}
