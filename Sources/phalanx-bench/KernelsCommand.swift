import ArgumentParser
import Foundation

/// `phalanx-bench kernels`: tensor kernels and one training step against raw OpenBLAS and memcpy.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "matmul vs cblas_sgemm, elementwise ops vs memcpy bandwidth, an MLP step vs its GEMMs alone.")

    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    @Option(help: "Timed repetitions per measurement (the fastest of our runs and of the baseline's are compared).")
    var repeats = 30

    @Option(help: "Elements for the bandwidth-bound kernels.")
    var elements = 16 * 1024 * 1024

    @Option(help: "Only run benchmarks whose name contains this text.")
    var filter: String?

    func run() throws {
        let bench = KernelBenchmarks(repeats: repeats, elements: elements)
        var results: [BenchmarkResult] = []
        let groups: [(String, () throws -> [BenchmarkResult])] = [
            ("matmul", bench.matmul), ("elementwise", bench.elementwise), ("training step", bench.trainingStep),
        ]
        for (name, body) in groups where filter.map({ name.contains($0) }) ?? true {
            let batch = try body()
            if json { batch.forEach { print($0.jsonLine()) } }
            results += batch
        }
        if !json { BenchmarkResult.printTable(results) }
    }
}
