import ArgumentParser
import Foundation
import Phalanx
import PhalanxCheckpoint
import PhalanxMPI
import PhalanxTelemetry

/// One run's model, optimizer, data order and options, shared by the loops.
final class Session {
    let task: TrainingTask
    let options: TrainerOptions
    let model: Sequential
    let optimizer: AdamW
    let sampler: GlobalBatchSampler
    let schedule: CosineDecay
    let totalSteps: Int
    let faults: [Fault]
    let stop = StopFlag()
    /// `--deterministic-shards`: this member's shard gradients of the current step, one after
    /// the other (`parameterCount` each), kept until their exact sum.
    var shardGradients: [Float] = []

    init(task: TrainingTask, options: TrainerOptions) throws {
        self.task = task
        self.options = options
        guard options.deterministicShards >= 0 else { throw ValidationError("--deterministic-shards takes 0 (off) or a shard count, not \(options.deterministicShards)") }
        model = try task.makeModel()
        optimizer = try AdamW(layout: model.store.layout, learningRate: options.learningRate, weightDecay: 1e-4)
        sampler = try GlobalBatchSampler(datasetSize: task.train.count, globalBatchSize: options.batchSize, seed: options.seed)
        totalSteps = options.steps ?? options.epochs * sampler.stepsPerEpoch
        schedule = CosineDecay(base: options.learningRate, totalSteps: max(totalSteps, 1))
        faults = try options.faults()
        if let path = options.`init` { try Weights.load(model, from: path) }
        stop.install()
    }

    var printEvery: Int { options.printEvery ?? sampler.stepsPerEpoch * 5 }

    /// Forward and backward on this member's slice of step `step`: gradients of the global mean
    /// loss (normaliser = global batch size) land in `model.store.gradients`. Returns the
    /// slice's share of the global loss.
    ///
    /// With `--deterministic-shards N` the global batch is cut into `N` fixed shards and this
    /// member computes each of its shards alone (`[⌊position·N/members⌋, ⌊(position+1)·N/members⌋)`),
    /// keeping their gradients in `shardGradients` for `reduceGradients`: every shard's gradient
    /// is then the same whoever computes it (on the same binary, BLAS and kind of CPU). The
    /// returned loss is then the share an even split would give.
    func gradients(step: Int, position: Int, members: Int, timeline: Timeline?) throws -> Double {
        let globalCount = sampler.globalBatchCount(step: step)
        model.store.gradients.zero()
        let loss = options.deterministicShards > 0
            ? try shardedForwardBackward(step: step, position: position, members: members, globalCount: globalCount, timeline: timeline)
            : try forwardBackward(try sampler.indices(step: step, position: position, members: members), globalCount: globalCount, timeline: timeline)
        if options.stepDelayMs > 0 { usleep(UInt32(options.stepDelayMs * 1000)) }
        return loss
    }

    /// `--deterministic-shards`: forward and backward on each of this member's shards alone,
    /// their gradients kept one after the other in `shardGradients`. Shards need not split
    /// evenly over the members: returns the share an even split of the same per-sample loss
    /// would give, so that `members` times it estimates the global loss.
    func shardedForwardBackward(step: Int, position: Int, members: Int, globalCount: Int, timeline: Timeline?) throws -> Double {
        let batch = try sampler.globalBatch(step: step)
        let shards = options.deterministicShards
        shardGradients.removeAll(keepingCapacity: true)
        var loss = 0.0, samples = 0
        for shard in GlobalBatchSampler.sliceRange(batchSize: shards, position: position, members: members) {
            let range = GlobalBatchSampler.sliceRange(batchSize: batch.count, position: shard, members: shards)
            guard !range.isEmpty else { continue }
            model.store.gradients.zero()
            loss += try forwardBackward(Array(batch[range]), globalCount: globalCount, timeline: timeline)
            samples += range.count
            shardGradients.append(contentsOf: model.store.gradients.buffer)
        }
        return samples > 0 ? loss * Double(globalCount) / Double(samples * members) : 0
    }

    /// Forward and backward on `indices`, adding to `model.store.gradients`; returns their share
    /// of the global loss.
    func forwardBackward(_ indices: [Int], globalCount: Int, timeline: Timeline?) throws -> Double {
        guard !indices.isEmpty else { return 0 }
        let (x, labels) = try task.train.batch(indices)
        let start = Date()
        let loss = try softmaxCrossEntropy(logits: try model.forward(x), labels: labels, normalizer: globalCount)
        let forwardEnd = Date()
        try model.backward(loss.gradient)
        timeline?.record(.forward, from: start, to: forwardEnd)
        timeline?.record(.backward, from: forwardEnd, to: Date())
        return Double(loss.loss) * Double(indices.count) / Double(globalCount)
    }

    /// Sums the members' gradients into `model.store.gradients`: a plain all-reduce, or with
    /// `--deterministic-shards` the exact sum of every shard's gradient (`ExactSum`), which is
    /// bit-identical whatever the number of members (also alone, `communicator` nil).
    func reduceGradients(over communicator: (any Communicator)?, timeline: Timeline?) throws {
        let start = Date()
        if options.deterministicShards > 0 {
            let count = model.store.gradients.count
            try shardGradients.withUnsafeBufferPointer { all in
                let parts = count == 0 ? [] : (0..<(all.count / count)).map { UnsafeBufferPointer(rebasing: all[($0 * count)..<(($0 + 1) * count)]) }
                try ExactSum.sum(parts, total: options.deterministicShards, into: model.store.gradients.buffer, over: communicator)
            }
        } else if let communicator, communicator.worldSize > 1 {
            try communicator.allReduce(model.store.gradients, op: .sum)
        } else {
            return
        }
        timeline?.record(.allReduce, from: start, to: Date())
    }

    /// The optimizer update at `step`.
    func update(step: Int, timeline: Timeline?) throws {
        let start = Date()
        optimizer.learningRate = schedule.learningRate(atStep: step)
        try optimizer.step(model.store)
        timeline?.record(.update, from: start, to: Date())
    }

    /// Held-out accuracy (nil without test data).
    func accuracy() throws -> Float? {
        guard let test = task.test else { return nil }
        let all = try test.batch(Array(0..<test.count))
        return try PhalanxNN.accuracy(logits: try model.forward(all.features), labels: all.labels)
    }

    /// Saves the final weights, reports, and fails below the minimum accuracy.
    func finish(report: RunReport, member: Int, steps: Int, worldSize: Int, started: Date, plot: Bool, extra: [String: Any] = [:]) throws {
        if let path = options.save {
            try Weights.save(model, to: path.replacingOccurrences(of: "{member}", with: String(member)))
        }
        let final = try accuracy()
        let written = report.finish(plot: plot)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in model.store.values.buffer { hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3 }
        let seconds = Date().timeIntervalSince(started)
        // Steady-state throughput: the steps after the first tenth (warm-up), samples over time.
        let steady = report.points.dropFirst(report.points.count / 10).filter { $0.samplesPerSecond > 0 }
        let stepSeconds = steady.reduce(0.0) { $0 + Double(options.batchSize) / $1.samplesPerSecond }
        let throughput = stepSeconds > 0 ? Double(steady.count * options.batchSize) / stepSeconds : 0
        var fields: [String: Any] = [
            "samples_per_s": throughput,
            "event": "done", "pid": Int(getpid()), "steps": steps, "accuracy": Double(final ?? -1), "params_hash": String(hash, radix: 16),
            "world_size": worldSize, "seconds": seconds, "files": written,
        ]
        fields.merge(extra) { a, _ in a }
        let accuracyText = final.map { String(format: "held-out accuracy %.2f%%", 100 * $0) } ?? "no held-out data"
        report.say("member \(member): \(accuracyText) after \(steps) steps in \(String(format: "%.2f", seconds)) s"
                   + (written.isEmpty ? "" : "\nwritten: \(written.joined(separator: ", "))"), event: fields)
        if let final, final < options.minAccuracy {
            throw ValidationError(String(format: "accuracy %.4f is below --min-accuracy %.4f", final, options.minAccuracy))
        }
        ExitReport.finished(member: member, members: worldSize)
    }
}
