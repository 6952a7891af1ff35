// DigitsMLP: a small MLP trained on the UCI handwritten digits shipped with Phalanx.
//
//   swift run -c release DigitsMLP [--epochs 30] [--batch-size 64] [--lr 0.003] [--seed 42]
//       [--steps N] [--hidden 128] [--checkpoint-dir DIR --checkpoint-every K] [--save weights.safetensors]
//       [--kill-at-step S]   (fault injection: SIGKILL itself after step S, to watch a resume)
//
// With --checkpoint-dir, a run started again continues from the newest valid checkpoint there,
// with the same parameters, optimizer state, step and data order as if it had never stopped.
//
// It shows the whole single-process loop: data → forward → loss → backward (gradients land in
// one flat buffer) → optimizer update. Later examples all-reduce that buffer across ranks.
import Foundation
import Phalanx
import PhalanxCheckpoint

struct Options {
    var epochs = 30
    var batchSize = 64
    var learningRate: Float = 3e-3
    var seed: UInt64 = 42
    var minimumAccuracy: Float = 0
    var steps: Int?
    var hidden = 128
    var checkpointDirectory: String?
    var checkpointEvery = 50
    var savePath: String?
    var printEvery: Int?
    var killAtStep: Int?
    var elastic = false
    var json = false
    var minimumMembers = 1
    var faults: [Fault] = []
    var failureTimeoutMilliseconds: Int?
    var joinWaitSeconds: Double?
    var stepDelayMilliseconds = 0

    /// Parses `--name value` pairs and the `--elastic`/`--json` switches; unknown flags are an error.
    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            if flag == "--elastic" { elastic = true; continue }
            if flag == "--json" { json = true; continue }
            guard let value = rest.popFirst() else { throw UsageError("missing value after \(flag)") }
            switch flag {
            case "--min-members": minimumMembers = try parse(value, flag)
            case "--fault": faults = try Fault.list(value)
            case "--failure-timeout-ms": failureTimeoutMilliseconds = try parse(value, flag)
            case "--join-wait-s": joinWaitSeconds = try parse(value, flag)
            case "--step-delay-ms": stepDelayMilliseconds = try parse(value, flag)
            case "--epochs": epochs = try parse(value, flag)
            case "--batch-size": batchSize = try parse(value, flag)
            case "--lr": learningRate = try parse(value, flag)
            case "--seed": seed = try parse(value, flag)
            case "--min-accuracy": minimumAccuracy = try parse(value, flag)
            case "--steps": steps = try parse(value, flag)
            case "--hidden": hidden = try parse(value, flag)
            case "--checkpoint-dir": checkpointDirectory = value
            case "--checkpoint-every": checkpointEvery = try parse(value, flag)
            case "--save": savePath = value
            case "--print-every": printEvery = try parse(value, flag)
            case "--kill-at-step": killAtStep = try parse(value, flag)
            default: throw UsageError("unknown option \(flag)")
            }
        }
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func parse<T: LosslessStringConvertible>(_ text: String, _ flag: String) throws -> T {
    guard let value = T(text) else { throw UsageError("\(flag): '\(text)' is not a valid \(T.self)") }
    return value
}

func evaluate(_ model: Sequential, on data: InMemoryDataset) throws -> Float {
    let all = try data.batch(Array(0..<data.count))
    return try accuracy(logits: try model.forward(all.features), labels: all.labels)
}

func run() throws {
    var options = try Options(Array(CommandLine.arguments.dropFirst()))
    if options.faults.isEmpty, let text = ProcessInfo.processInfo.environment["PHALANX_FAULT"] { options.faults = try Fault.list(text) }
    if options.elastic { return try runElastic(options) }
    // Keep freed activation memory in the process: steps then reuse it without page faults.
    MemoryPolicy.keepFreedMemoryForReuse()
    let digits = try DigitsDataset.load()
    let (train, test) = try digits.split(trainFraction: 0.8, seed: options.seed)
    print("digits: \(train.count) training and \(test.count) held-out samples of 8×8 pixels")

    // 64 → hidden → 10, every parameter in one flat buffer.
    let model = try Sequential([Linear(64, options.hidden), ReLU(), Linear(options.hidden, 10)], seed: options.seed)
    let optimizer = try AdamW(layout: model.store.layout, learningRate: options.learningRate, weightDecay: 1e-4)
    let sampler = try GlobalBatchSampler(datasetSize: train.count, globalBatchSize: options.batchSize, seed: options.seed)
    let totalSteps = options.steps ?? options.epochs * sampler.stepsPerEpoch
    let schedule = CosineDecay(base: options.learningRate, totalSteps: totalSteps)
    print("model: \(model.parameterCount) parameters; \(sampler.stepsPerEpoch) steps per epoch, \(totalSteps) steps")

    // Resume from the newest valid checkpoint, if any; checkpoints are written in the background.
    var step = 0
    var writer: AsyncCheckpointWriter?
    if let directory = options.checkpointDirectory {
        let store = try CheckpointStore(directory: directory, keep: 3)
        let (latest, skipped) = store.latestValid()
        for reason in skipped { print("skipping checkpoint: \(reason)") }
        if let latest {
            step = try restore(latest, into: model, optimizer)
            print("resumed from \(latest.file.path) at step \(step)")
        }
        writer = AsyncCheckpointWriter(store: store) { path, savedStep in print("checkpoint written step \(savedStep): \(path)") }
    }

    let start = Date()
    var lossSum = 0.0, lossCount = 0
    let printEvery = options.printEvery ?? sampler.stepsPerEpoch * 5
    while step < totalSteps {
        // One member (position 0 of 1) takes the whole global batch.
        let (x, labels) = try train.batch(try sampler.indices(step: step, position: 0, members: 1))
        let logits = try model.forward(x)
        let loss = try softmaxCrossEntropy(logits: logits, labels: labels)
        try model.backward(loss.gradient)
        optimizer.learningRate = schedule.learningRate(atStep: step)
        try optimizer.step(model.store)
        lossSum += Double(loss.loss)
        lossCount += 1
        step += 1
        if step == options.killAtStep {
            // Fault injection: die as abruptly as a power cut would take us.
            print("killing myself with SIGKILL at step \(step)")
            fflush(nil)
            kill(getpid(), SIGKILL)
        }
        if let writer, step % options.checkpointEvery == 0 {
            print("checkpoint saving step \(step)")
            try writer.submit(try snapshot(model, optimizer, step: step, epoch: sampler.epoch(ofStep: step), batchSize: options.batchSize))
        }
        if step % printEvery == 0 || step == totalSteps {
            let seconds = Date().timeIntervalSince(start)
            print(String(
                format: "epoch %3d  step %5d  loss %.4f  held-out accuracy %.2f%%  %.0f samples/s",
                sampler.epoch(ofStep: step - 1) + 1, step, lossSum / Double(max(lossCount, 1)), 100 * (try evaluate(model, on: test)),
                Double(lossCount * options.batchSize) / max(seconds, 1e-9)))
            fflush(nil)
        }
    }
    try writer?.close()
    if let path = options.savePath {
        try saveWeights(model, to: path)
        print("final weights written to \(path)")
    }
    let final = try evaluate(model, on: test)
    print(String(format: "final held-out accuracy: %.2f%% after %d steps in %.2f s", 100 * final, step, Date().timeIntervalSince(start)))
    fflush(nil)
    if final < options.minimumAccuracy {
        throw UsageError(String(format: "accuracy %.4f is below --min-accuracy %.4f", final, options.minimumAccuracy))
    }
}

do {
    try run()
} catch {
    FileHandle.standardError.write("DigitsMLP: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
