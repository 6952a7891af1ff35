import CBLAS
import Foundation
import Phalanx

/// The kernel benchmarks. Each measures our code and its baseline in alternation in one run.
struct KernelBenchmarks {
    let repeats: Int
    let elements: Int

    /// `Tensor.matmul` (allocating its result) against `cblas_sgemm` into a preallocated buffer.
    func matmul() throws -> [BenchmarkResult] {
        try [256, 512, 1024].map { n in
            var generator = SeededGenerator(seed: UInt64(n))
            let a = try Tensor.normal([n, n], generator: &generator)
            let b = try Tensor.normal([n, n], generator: &generator)
            var c = [Float](repeating: 0, count: n * n)
            var result = try Tensor.zeros([1])
            let (ours, raw) = try Timing.paired(repeats: repeats) {
                result = try a.matmul(b)
            } _: {
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                                        ap.baseAddress, Int32(n), bp.baseAddress, Int32(n), 0, cp.baseAddress, Int32(n))
                        }
                    }
                }
            }
            // Verify: the two products agree.
            let worst = zip(result.scalars, c).map { abs($0 - $1) }.max() ?? 0
            guard worst <= 1e-3 else { throw BenchmarkError.wrongResult("matmul n=\(n) differs from sgemm by \(worst)") }
            let flops = 2 * pow(Double(n), 3)
            return BenchmarkResult(
                name: "matmul n=\(n)", ours: flops / ours / 1e9, baseline: flops / raw / 1e9, unit: "GFLOP/s",
                baselineName: "cblas_sgemm", goal: 0.95, higherIsBetter: true)
        }
    }

    /// In-place add, ReLU and axpy over `elements` floats against memcpy's bandwidth.
    /// Bytes moved: memcpy reads n and writes n; add and axpy read 2n and write n; ReLU reads n and writes n.
    func elementwise() throws -> [BenchmarkResult] {
        let n = elements, bytes = Double(n * MemoryLayout<Float>.size)
        var generator = SeededGenerator(seed: 1)
        var a = try Tensor.normal([n], generator: &generator)
        let b = try Tensor.normal([n], generator: &generator)
        let source = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        let destination = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        defer { source.deallocate(); destination.deallocate() }
        memset(source, 1, n * 4)
        memset(destination, 0, n * 4)
        let copy = { _ = memcpy(destination, source, n * 4) }

        let (addTime, copyForAdd) = try Timing.paired(repeats: repeats) { try a += b } _: { copy() }
        let expectedAdd = a.scalars[7]
        var check = a
        try check += b
        guard check.scalars[7] == expectedAdd + b.scalars[7] else { throw BenchmarkError.wrongResult("add") }

        var reluInput = a
        let (reluTime, copyForReLU) = Timing.paired(repeats: repeats) { reluInput.formReLU() } _: { copy() }
        guard reluInput.scalars.allSatisfy({ $0 >= 0 }) else { throw BenchmarkError.wrongResult("relu") }

        let before = a.scalars[11]
        let (axpyTime, copyForAxpy) = try Timing.paired(repeats: repeats) { try a.axpy(0.5, b) } _: { copy() }
        guard abs(a.scalars[11] - (before + Float(repeats + 2) * 0.5 * b.scalars[11])) <= 1e-3 * max(1, abs(a.scalars[11])) else {
            throw BenchmarkError.wrongResult("axpy")
        }

        // The allocating forms (`a + b`, `relu()`) against memcpy into a fresh allocation, so that
        // both sides pay for new memory.
        let freshCopy = {
            let target = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
            memcpy(target, source, n * 4)
            target.deallocate()
        }
        var sink = a
        let (allocatingAdd, copyFresh1) = try Timing.paired(repeats: repeats) { sink = try a + b } _: { freshCopy() }
        let (allocatingReLU, copyFresh2) = Timing.paired(repeats: repeats) { sink = a.relu() } _: { freshCopy() }
        guard sink.count == n else { throw BenchmarkError.wrongResult("allocating ops") }

        func result(_ name: String, _ time: Double, _ traffic: Double, _ copyTime: Double) -> BenchmarkResult {
            BenchmarkResult(
                name: "\(name) n=\(n / (1024 * 1024))Mi (in place)", ours: traffic * bytes / time / 1e9,
                baseline: 2 * bytes / copyTime / 1e9, unit: "GB/s", baselineName: "memcpy", goal: 0.7, higherIsBetter: true)
        }
        func allocating(_ name: String, _ time: Double, _ traffic: Double, _ copyTime: Double) -> BenchmarkResult {
            BenchmarkResult(
                name: "\(name) n=\(n / (1024 * 1024))Mi (allocating)", ours: traffic * bytes / time / 1e9,
                baseline: 2 * bytes / copyTime / 1e9, unit: "GB/s", baselineName: "malloc + memcpy", goal: 0.7, higherIsBetter: true)
        }
        return [
            result("add", addTime, 3, copyForAdd), result("relu", reluTime, 2, copyForReLU), result("axpy", axpyTime, 3, copyForAxpy),
            allocating("add", allocatingAdd, 3, copyFresh1), allocating("relu", allocatingReLU, 2, copyFresh2),
        ]
    }

    /// One SGD training step of an MLP 784-1024-1024-10 at batch 128 (forward, loss, backward,
    /// update) against the same eight GEMMs alone into preallocated buffers: first with malloc's
    /// defaults, then after `MemoryPolicy.keepFreedMemoryForReuse()` (what the trainers call).
    func trainingStep() throws -> [BenchmarkResult] {
        let defaults = try trainingStep(label: "malloc defaults")
        guard MemoryPolicy.keepFreedMemoryForReuse() else { return defaults }
        return defaults + (try trainingStep(label: "MemoryPolicy"))
    }

    private func trainingStep(label: String) throws -> [BenchmarkResult] {
        let batch = 128, sizes = [784, 1024, 1024, 10]
        let model = try Sequential([Linear(784, 1024), ReLU(), Linear(1024, 1024), ReLU(), Linear(1024, 10)], seed: 1)
        let optimizer = try SGD(layout: model.store.layout, learningRate: 0.01)
        var generator = SeededGenerator(seed: 2)
        let x = try Tensor.normal([batch, 784], generator: &generator)
        let labels = (0..<batch).map { $0 % 10 }
        let gemms = try GemmOnlyStep(batch: batch, sizes: sizes, weights: model)

        // Three times the repetitions: a step is short, and the fastest of more samples is what
        // filters out the other tenants of a shared machine.
        let (stepTime, gemmTime) = try Timing.paired(repeats: 3 * repeats) {
            let logits = try model.forward(x)
            let loss = try softmaxCrossEntropy(logits: logits, labels: labels)
            try model.backward(loss.gradient)
            try optimizer.step(model.store)
        } _: {
            gemms.run()
        }
        if ProcessInfo.processInfo.environment["PHALANX_BENCH_BREAKDOWN"] != nil {
            var logits = try model.forward(x)
            var loss = try softmaxCrossEntropy(logits: logits, labels: labels)
            let forward = try Timing.median(repeats: repeats) { logits = try model.forward(x) }
            let lossTime = try Timing.median(repeats: repeats) { loss = try softmaxCrossEntropy(logits: logits, labels: labels) }
            let backward = try Timing.median(repeats: repeats) { try model.backward(loss.gradient) }
            let update = try Timing.median(repeats: repeats) { try optimizer.step(model.store) }
            print(String(format: "breakdown ms: forward %.3f loss %.3f backward %.3f update %.3f", forward * 1e3, lossTime * 1e3, backward * 1e3, update * 1e3))
        }
        return [BenchmarkResult(
            name: "MLP step b=128 (\(label))", ours: stepTime * 1e3, baseline: gemmTime * 1e3, unit: "ms",
            baselineName: "its 8 GEMMs alone", goal: 1.15, higherIsBetter: false)]
    }
}

/// Errors that stop a benchmark: a result that does not verify.
enum BenchmarkError: Error, CustomStringConvertible {
    case wrongResult(String)
    var description: String {
        switch self { case let .wrongResult(what): return "benchmark result does not verify: \(what)" }
    }
}
