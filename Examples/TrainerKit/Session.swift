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
    /// `--overlap`: the gradient all-reduce overlapping backward (nil: after backward, whole).
    let reducer: BucketedAllReduce?
    /// When a step uses `reducer` (`--overlap auto` decides by the members and the cores).
    let overlap: OverlapPolicy
    /// Whether any step overlapped (the `done` event reports it).
    var overlapped = false
    /// True while the reducer runs this step's buckets.
    var overlapping = false
    /// Seconds spent in forward, backward and update, and waiting for the all-reduce after
    /// backward, over `timedSteps` steps (the `done` event reports the means).
    var computeSeconds = 0.0, reduceWaitSeconds = 0.0, timedSteps = 0

    init(task: TrainingTask, options: TrainerOptions) throws {
        self.task = task
        self.options = options
        guard options.deterministicShards >= 0 else { throw ValidationError("--deterministic-shards takes 0 (off) or a shard count, not \(options.deterministicShards)") }
        model = try task.makeModel()
        optimizer = try AdamW(layout: model.store.layout, learningRate: options.learningRate, weightDecay: 1e-4)
        sampler = try GlobalBatchSampler(datasetSize: task.train.count, globalBatchSize: options.batchSize, seed: options.seed)
        let stepsPerEpoch = sampler.stepsPerEpoch
        totalSteps = options.steps ?? options.epochs.map { $0 * stepsPerEpoch } ?? task.defaultSteps ?? 30 * stepsPerEpoch
        schedule = CosineDecay(base: options.learningRate, totalSteps: max(totalSteps, 1))
        faults = try options.faults()
        if let path = options.`init` { try Weights.load(model, from: path) }
        guard ["on", "off", "auto"].contains(options.overlap) else { throw ValidationError("--overlap takes on, off or auto, not '\(options.overlap)'") }
        guard (1...(1 << 20)).contains(options.bucketKb) else { throw ValidationError("--bucket-kb takes 1 to 1048576 (KiB), not \(options.bucketKb)") }
        overlap = OverlapPolicy(mode: options.overlap, bucketElements: options.bucketKb * 1024 / MemoryLayout<Float>.stride)
        reducer = options.overlap == "off" ? nil : BucketedAllReduce(bucketElements: overlap.bucketElements)
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
    ///
    /// With a reducer (`--overlap`) and a `communicator` of more than one member, the gradient
    /// all-reduce starts during backward, bucket by bucket; `reduceGradients` waits for it.
    /// `beforeLastBucket` then runs before backward releases the last bucket (fault injection:
    /// a member killed there dies before its step's all-reduce can complete, as without overlap).
    func gradients(
        step: Int, position: Int, members: Int, communicator: (any Communicator)? = nil, timeline: Timeline?, beforeLastBucket: (() -> Void)? = nil
    ) throws -> Double {
        let started = Date()
        defer { computeSeconds += Date().timeIntervalSince(started) }
        let globalCount = sampler.globalBatchCount(step: step)
        model.store.gradients.zero()
        overlapping = false
        if options.deterministicShards > 0 {
            let loss = try shardedForwardBackward(step: step, position: position, members: members, globalCount: globalCount, timeline: timeline)
            if options.stepDelayMs > 0 { usleep(UInt32(options.stepDelayMs * 1000)) }
            return loss
        }
        let slice = GlobalBatchSampler.sliceRange(batchSize: globalCount, position: position, members: members)
        let indices = try sampler.indices(step: step, position: position, members: members)
        if options.stepDelayMs > 0 { usleep(UInt32(options.stepDelayMs * 1000)) }
        // Open MPI below MPI_THREAD_SERIALIZED must be called from the main thread only.
        let threadsAllowed = !(communicator is MPICommunicator) || MPIRuntime.allowsOtherThreads
        guard let reducer, let communicator, threadsAllowed, overlap.enabled(parameterCount: model.parameterCount, worldSize: communicator.worldSize) else {
            return try forwardBackward(indices, step: step, firstSample: slice.lowerBound, globalCount: globalCount, timeline: timeline, reducer: nil)
        }
        reducer.begin(model.store.gradients.buffer, over: communicator)
        overlapping = true
        overlapped = true
        do {
            return try forwardBackward(indices, step: step, firstSample: slice.lowerBound, globalCount: globalCount, timeline: timeline, reducer: reducer,
                                       beforeLastBucket: beforeLastBucket)
        } catch {
            // Backward failed (or a bucket did): the communicator is free once `cancel` returns.
            reducer.cancel()
            overlapping = false
            throw error
        }
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
            loss += try forwardBackward(Array(batch[range]), step: step, firstSample: range.lowerBound, globalCount: globalCount, timeline: timeline, reducer: nil)
            samples += range.count
            shardGradients.append(contentsOf: model.store.gradients.buffer)
        }
        return samples > 0 ? loss * Double(globalCount) / Double(samples * members) : 0
    }

    /// Forward and backward on `indices` (the global batch's samples from `firstSample` on),
    /// adding to `model.store.gradients`; returns their share of the global loss. Dropout masks
    /// are keyed by the step and the samples' places in the global batch, so they are the same
    /// whoever computes them. A sequence model's logits `[batch, tokens, classes]` meet one
    /// label per token, the loss being the mean over every token of the global batch.
    func forwardBackward(
        _ indices: [Int], step: Int, firstSample: Int, globalCount: Int, timeline: Timeline?, reducer: BucketedAllReduce?, beforeLastBucket: (() -> Void)? = nil
    ) throws -> Double {
        guard !indices.isEmpty else {
            beforeLastBucket?()
            try reducer?.ready(from: 0)
            return 0
        }
        let (x, labels) = try task.train.batch(indices)
        let start = Date()
        model.training = true
        model.setRandomStream(draw: step, firstSample: firstSample)
        let logits = try model.forward(x)
        let perSample = task.train.labelsPerSample
        let rows = perSample > 1 ? try logits.reshaped([labels.count, logits.count / max(labels.count, 1)]) : logits
        let loss = try softmaxCrossEntropy(logits: rows, labels: labels, normalizer: globalCount * perSample)
        let forwardEnd = Date()
        let gradientsReady = reducer.map { reducer in
            { (offset: Int) throws in
                if offset == 0 { beforeLastBucket?() }
                try reducer.ready(from: offset)
            }
        }
        try model.backward(perSample > 1 ? try loss.gradient.reshaped(logits.shape) : loss.gradient, gradientsReady: gradientsReady)
        timeline?.record(.forward, from: start, to: forwardEnd)
        timeline?.record(.backward, from: forwardEnd, to: Date())
        // The loss is already normalised by the global batch: it is this slice's share.
        return Double(loss.loss)
    }

    /// Sums the members' gradients into `model.store.gradients`: a plain all-reduce, or with
    /// `--deterministic-shards` the exact sum of every shard's gradient (`ExactSum`), which is
    /// bit-identical whatever the number of members (also alone, `communicator` nil).
    func reduceGradients(over communicator: (any Communicator)?, timeline: Timeline?) throws {
        let start = Date()
        defer { reduceWaitSeconds += Date().timeIntervalSince(start) }
        if overlapping, let reducer {
            overlapping = false
            try reducer.finish()
        } else if options.deterministicShards > 0 {
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
        defer {
            computeSeconds += Date().timeIntervalSince(start)
            timedSteps += 1
        }
        optimizer.learningRate = schedule.learningRate(atStep: step)
        try optimizer.step(model.store)
        timeline?.record(.update, from: start, to: Date())
    }

    /// Held-out accuracy and mean loss (per token for a sequence model), in evaluation mode,
    /// over every held-out sample, 128 at a time; nil without test data.
    func evaluate() throws -> (accuracy: Float, loss: Double)? {
        guard let test = task.test, test.count > 0 else { return nil }
        model.training = false
        defer { model.training = true }
        var correct = 0.0, loss = 0.0, labelsSeen = 0
        let count = test.count
        for start in stride(from: 0, to: count, by: 128) {
            let part = try test.batch(Array(start..<min(start + 128, count)))
            let logits = try model.forward(part.features)
            let rows = try logits.reshaped([part.labels.count, logits.count / max(part.labels.count, 1)])
            correct += Double(try PhalanxNN.accuracy(logits: rows, labels: part.labels)) * Double(part.labels.count)
            loss += Double(try softmaxCrossEntropy(logits: rows, labels: part.labels, normalizer: 1).loss)
            labelsSeen += part.labels.count
        }
        return (Float(correct / Double(labelsSeen)), loss / Double(labelsSeen))
    }

    /// Saves the final weights, reports, and fails below the minimum accuracy.
    func finish(report: RunReport, member: Int, steps: Int, worldSize: Int, started: Date, plot: Bool, extra: [String: Any] = [:]) throws {
        if let path = options.save {
            try Weights.save(model, to: path.replacingOccurrences(of: "{member}", with: String(member)))
        }
        let evaluation = try evaluate()
        let final = evaluation?.accuracy
        let written = report.finish(plot: plot)
        let sample = plot ? try task.sample?(model) : nil
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
            "test_loss": evaluation?.loss ?? -1, "overlap": overlapped,
            "compute_ms_per_step": 1000 * computeSeconds / Double(max(timedSteps, 1)),
            "reduce_wait_ms_per_step": 1000 * reduceWaitSeconds / Double(max(timedSteps, 1)),
        ]
        if let sample { fields["sample"] = sample }
        fields.merge(extra) { a, _ in a }
        let accuracyText = evaluation.map { String(format: "held-out accuracy %.2f%%%@", 100 * $0.accuracy, task.train.labelsPerSample > 1 ? String(format: " (per character), loss %.3f", $0.loss) : "") } ?? "no held-out data"
        report.say("member \(member): \(accuracyText) after \(steps) steps in \(String(format: "%.2f", seconds)) s"
                   + (written.isEmpty ? "" : "\nwritten: \(written.joined(separator: ", "))")
                   + (sample.map { "\nsample:\n\($0)" } ?? ""), event: fields)
        if let final, final < options.minAccuracy {
            throw ValidationError(String(format: "accuracy %.4f is below --min-accuracy %.4f", final, options.minAccuracy))
        }
        ExitReport.finished(member: member, members: worldSize)
    }
}
