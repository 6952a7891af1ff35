import PhalanxTensor

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
/// L2 weight decay, with exactly PyTorch's `torch.optim.SGD` update:
///
///     g = grad + weightDecay·p
///     buf = g (first step) or momentum·buf + (1 − dampening)·g
///     g = nesterov ? g + momentum·buf : buf        (when momentum ≠ 0)
///     p = p − lr·g
public final class SGD: Optimizer {
    /// The learning rate of the next step.
    public var learningRate: Float
    /// The momentum factor (0 disables the buffer).
    public let momentum: Float
    /// Dampening of the gradient added to the momentum buffer.
    public let dampening: Float
    /// Whether to use Nesterov momentum.
    public let nesterov: Bool
    /// The L2 penalty added to the gradient.
    public let weightDecay: Float
    /// Steps taken so far.
    public var stepCount = 0
    /// The momentum buffers ("optimizer.sgd.momentum.<name>"), empty without momentum.
    public let state: FlatBuffer
    /// The names in `state`.
    public let stateLayout: ParameterLayout
    private let parameterCount: Int

    /// Makes an optimizer for a model whose parameters have `layout`.
    /// - Throws: `NNError.invalidHyperparameter` for a negative rate, momentum or decay, or
    ///   Nesterov without momentum or with dampening.
    public init(
        layout: ParameterLayout, learningRate: Float, momentum: Float = 0, dampening: Float = 0,
        nesterov: Bool = false, weightDecay: Float = 0
    ) throws {
        guard learningRate >= 0 else { throw NNError.invalidHyperparameter(name: "learningRate", value: Double(learningRate), reason: "must be ≥ 0") }
        guard momentum >= 0 else { throw NNError.invalidHyperparameter(name: "momentum", value: Double(momentum), reason: "must be ≥ 0") }
        guard weightDecay >= 0 else { throw NNError.invalidHyperparameter(name: "weightDecay", value: Double(weightDecay), reason: "must be ≥ 0") }
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw NNError.invalidHyperparameter(name: "nesterov", value: 1, reason: "needs momentum > 0 and dampening 0")
        }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        parameterCount = layout.totalCount
        stateLayout = momentum == 0 ? ParameterLayout() : optimizerStateLayout(prefix: "optimizer.sgd", slots: ["momentum"], parameters: layout)
        state = FlatBuffer(count: stateLayout.totalCount)
    }

    /// One SGD update of `parameters` from `gradients`.
    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) throws {
        try checkSizes(parameters.count, gradients.count, expected: parameterCount)
        guard let p = parameters.baseAddress, let g = gradients.baseAddress else { stepCount += 1; return }
        let lr = learningRate, wd = weightDecay, mu = momentum, keep = 1 - dampening, nesterov = nesterov
        let buf = state.baseAddress
        let first = stepCount == 0
        Parallel.forEachChunk(count: parameterCount) { range in
            if mu == 0 {
                for i in range { p[i] -= lr * (g[i] + wd * p[i]) }
            } else {
                for i in range {
                    let d = g[i] + wd * p[i]
                    let b = first ? d : mu * buf[i] + keep * d
                    buf[i] = b
                    p[i] -= lr * (nesterov ? d + mu * b : b)
                }
            }
        }
        stepCount += 1
    }
}
