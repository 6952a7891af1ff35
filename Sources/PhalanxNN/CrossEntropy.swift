import PhalanxTensor

/// The loss value and its gradient with respect to the logits.
public struct LossAndGradient: Sendable {
    /// The loss (a mean, see `softmaxCrossEntropy`).
    public var loss: Float
    /// ∂loss/∂logits, `[batch, classes]`.
    public var gradient: Tensor
}

/// Softmax cross-entropy of `logits` `[batch, classes]` against integer `labels` (`batch` of them).
///
/// The loss is `Σ_i −log softmax(logits_i)[label_i] / normalizer`, computed stably through
/// log-softmax; the gradient is `(softmax − onehot) / normalizer`. `normalizer` defaults to the
/// batch size (the mean; 1 for an empty batch, whose loss is 0). In data-parallel training each
/// member passes the size of the step's *global* batch (`GlobalBatchSampler.globalBatchCount`),
/// so that summing the members' gradients gives exactly the gradient of the global mean.
/// - Throws: `TensorError.rankMismatch` unless `logits` is 2-D, `NNError.labelCountMismatch`,
///   `NNError.invalidLabel` for a label outside `0..<classes`, `NNError.invalidHyperparameter`
///   for a normalizer below 1.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int], normalizer: Int? = nil) throws -> LossAndGradient {
    guard logits.rank == 2 else { throw TensorError.rankMismatch(operation: "softmaxCrossEntropy", expected: 2, shape: logits.shape) }
    let batch = logits.shape[0], classes = logits.shape[1]
    guard labels.count == batch else { throw NNError.labelCountMismatch(batch: batch, labels: labels.count) }
    if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
        throw NNError.invalidLabel(index: bad, label: labels[bad], classes: classes)
    }
    let divisor = normalizer ?? Swift.max(batch, 1)
    guard divisor >= 1 else {
        throw NNError.invalidHyperparameter(name: "normalizer", value: Double(divisor), reason: "must be at least 1")
    }
    let scale = 1 / Float(divisor)
    var gradient = try logits.softmax()
    var total = 0.0
    let logProbabilities = try logits.logSoftmax()
    gradient.withUnsafeMutableBufferPointer { g in
        logProbabilities.withUnsafeBufferPointer { lp in
            guard let gp = g.baseAddress, let lpp = lp.baseAddress else { return }
            for (row, label) in labels.enumerated() {
                total -= Double(lpp[row * classes + label])
                gp[row * classes + label] -= 1
            }
            Kernels.scale(gp, count: g.count, by: scale)
        }
    }
    return LossAndGradient(loss: Float(total / Double(divisor)), gradient: gradient)
}

/// The fraction of rows of `logits` `[batch, classes]` whose arg-max equals the label
/// (0 for an empty batch).
/// - Throws: `TensorError` unless 2-D, `NNError.labelCountMismatch`.
public func accuracy(logits: Tensor, labels: [Int]) throws -> Float {
    guard logits.rank == 2 else { throw TensorError.rankMismatch(operation: "accuracy", expected: 2, shape: logits.shape) }
    guard labels.count == logits.shape[0] else { throw NNError.labelCountMismatch(batch: logits.shape[0], labels: labels.count) }
    if labels.isEmpty || logits.shape[1] == 0 { return 0 }
    let predictions = try logits.argmax(axis: 1)
    let correct = zip(predictions, labels).filter { $0 == $1 }.count
    return Float(correct) / Float(labels.count)
}
