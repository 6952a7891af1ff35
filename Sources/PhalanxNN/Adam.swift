import PhalanxTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How Adam applies weight decay.
public enum WeightDecayMode: Sendable, Equatable {
    /// Added to the gradient (`g += wd·p`), as `torch.optim.Adam`.
    case l2
    /// Decoupled: `p *= 1 − lr·wd` before the update, as `torch.optim.AdamW`.
    case decoupled
}

/// Adam with bias correction (Kingma & Ba), exactly `torch.optim.Adam` / `AdamW`:
///
///     m = β1·m + (1 − β1)·g,  v = β2·v + (1 − β2)·g²
///     p = p − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)
///
/// State: "optimizer.adam.m.<name>" then "optimizer.adam.v.<name>" in one flat buffer.
public class Adam: Optimizer {
    /// The learning rate of the next step.
    public var learningRate: Float
    /// Exponential decay of the first moment.
    public let beta1: Float
    /// Exponential decay of the second moment.
    public let beta2: Float
    /// Added to the denominator for stability.
    public let epsilon: Float
    /// The weight-decay factor.
    public let weightDecay: Float
    /// Whether decay is an L2 term or decoupled (AdamW).
    public let weightDecayMode: WeightDecayMode
    /// Steps taken so far (t − 1 during a step).
    public var stepCount = 0
    /// m then v, each `parameterCount` elements.
    public let state: FlatBuffer
    /// The names in `state`.
    public let stateLayout: ParameterLayout
    private let parameterCount: Int

    /// Makes an optimizer for a model whose parameters have `layout`.
    /// - Throws: `NNError.invalidHyperparameter` for betas outside [0, 1), a negative rate,
    ///   epsilon or decay.
    public init(
        layout: ParameterLayout, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 0, weightDecayMode: WeightDecayMode = .l2
    ) throws {
        for (name, value) in [("beta1", beta1), ("beta2", beta2)] where !(value >= 0 && value < 1) {
            throw NNError.invalidHyperparameter(name: name, value: Double(value), reason: "must be in [0, 1)")
        }
        for (name, value) in [("learningRate", learningRate), ("epsilon", epsilon), ("weightDecay", weightDecay)] where !(value >= 0) {
            throw NNError.invalidHyperparameter(name: name, value: Double(value), reason: "must be ≥ 0")
        }
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.weightDecayMode = weightDecayMode
        parameterCount = layout.totalCount
        stateLayout = optimizerStateLayout(prefix: "optimizer.adam", slots: ["m", "v"], parameters: layout)
        state = FlatBuffer(count: stateLayout.totalCount)
    }

    /// One Adam update of `parameters` from `gradients`.
    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) throws {
        try checkSizes(parameters.count, gradients.count, expected: parameterCount)
        stepCount += 1
        guard let p = parameters.baseAddress, let g = gradients.baseAddress else { return }
        let n = parameterCount
        let m = state.baseAddress, v = state.baseAddress + n
        let t = Double(stepCount)
        let correction1 = Float(1 - pow(Double(beta1), t))
        let correction2Root = Float((1 - pow(Double(beta2), t)).squareRoot())
        let stepSize = learningRate / correction1
        let b1 = beta1, b2 = beta2, eps = epsilon
        let l2 = weightDecayMode == .l2 ? weightDecay : 0
        let shrink = weightDecayMode == .decoupled ? 1 - learningRate * weightDecay : 1
        Parallel.forEachChunk(count: n) { range in
            for i in range {
                let pi = p[i] * shrink
                let gi = g[i] + l2 * pi
                let mi = b1 * m[i] + (1 - b1) * gi
                let vi = b2 * v[i] + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] = pi - stepSize * mi / ((vi.squareRoot() / correction2Root) + eps)
            }
        }
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter), `torch.optim.AdamW`'s update.
/// Its default weight decay is 0.01, as PyTorch's.
public final class AdamW: Adam {
    /// Makes an optimizer for a model whose parameters have `layout`.
    /// - Throws: as `Adam`.
    public init(
        layout: ParameterLayout, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 0.01
    ) throws {
        try super.init(
            layout: layout, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, weightDecayMode: .decoupled)
    }
}
