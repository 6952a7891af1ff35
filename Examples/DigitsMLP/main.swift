// DigitsMLP: a small MLP trained on the UCI handwritten digits shipped with Phalanx.
//
//   swift run -c release DigitsMLP [--epochs 30] [--batch-size 64] [--lr 0.003] [--seed 42]
//
// It shows the whole single-process loop: data → forward → loss → backward (gradients land in
// one flat buffer) → optimizer update. Later examples all-reduce that buffer across ranks.
import Foundation
import Phalanx

struct Options {
    var epochs = 30
    var batchSize = 64
    var learningRate: Float = 3e-3
    var seed: UInt64 = 42
    var minimumAccuracy: Float = 0

    /// Parses `--name value` pairs; unknown flags are an error.
    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw UsageError("missing value after \(flag)") }
            switch flag {
            case "--epochs": epochs = try parse(value, flag)
            case "--batch-size": batchSize = try parse(value, flag)
            case "--lr": learningRate = try parse(value, flag)
            case "--seed": seed = try parse(value, flag)
            case "--min-accuracy": minimumAccuracy = try parse(value, flag)
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
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    // Keep freed activation memory in the process: steps then reuse it without page faults.
    MemoryPolicy.keepFreedMemoryForReuse()
    let digits = try DigitsDataset.load()
    let (train, test) = try digits.split(trainFraction: 0.8, seed: options.seed)
    print("digits: \(train.count) training and \(test.count) held-out samples of 8×8 pixels")

    // 64 → 128 → 10, every parameter in one flat buffer.
    let model = try Sequential([Linear(64, 128), ReLU(), Linear(128, 10)], seed: options.seed)
    let optimizer = try AdamW(layout: model.store.layout, learningRate: options.learningRate, weightDecay: 1e-4)
    let sampler = try GlobalBatchSampler(datasetSize: train.count, globalBatchSize: options.batchSize, seed: options.seed)
    let schedule = CosineDecay(base: options.learningRate, totalSteps: options.epochs * sampler.stepsPerEpoch)
    print("model: \(model.parameterCount) parameters; \(sampler.stepsPerEpoch) steps per epoch")

    let start = Date()
    var step = 0
    for epoch in 0..<options.epochs {
        var lossSum = 0.0
        for _ in 0..<sampler.stepsPerEpoch {
            // One member (position 0 of 1) takes the whole global batch.
            let (x, labels) = try train.batch(try sampler.indices(step: step, position: 0, members: 1))
            let logits = try model.forward(x)
            let loss = try softmaxCrossEntropy(logits: logits, labels: labels)
            try model.backward(loss.gradient)
            optimizer.learningRate = schedule.learningRate(atStep: step)
            try optimizer.step(model.store)
            lossSum += Double(loss.loss)
            step += 1
        }
        if epoch % 5 == 4 || epoch == options.epochs - 1 {
            let seconds = Date().timeIntervalSince(start)
            let rate = Double(step * options.batchSize) / max(seconds, 1e-9)
            print(String(
                format: "epoch %3d  step %5d  loss %.4f  held-out accuracy %.2f%%  %.0f samples/s",
                epoch + 1, step, lossSum / Double(sampler.stepsPerEpoch), 100 * (try evaluate(model, on: test)), rate))
        }
    }
    let final = try evaluate(model, on: test)
    print(String(format: "final held-out accuracy: %.2f%% after %d steps in %.2f s", 100 * final, step, Date().timeIntervalSince(start)))
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
