import PhalanxTensor

/// Layer normalisation over the last dimension (PyTorch's `LayerNorm(features)`): each row of
/// `features` values is shifted to mean 0 and scaled to variance 1 (biased, plus `epsilon`),
/// then multiplied by `weight` and shifted by `bias` (`[features]` each, starting at 1 and 0).
public final class LayerNorm: Layer {
    /// The size of the normalised (last) dimension.
    public let features: Int
    /// Added to the variance before the square root.
    public let epsilon: Float
    private var weight: ParameterSlot?
    private var bias: ParameterSlot?
    private var input: Tensor?
    /// Per row: the normalised values and 1/√(var + ε), kept for backward.
    private var normalized: [Float] = []
    private var inverseDeviation: [Float] = []

    /// Normalises rows of `features` values.
    public init(_ features: Int, epsilon: Float = 1e-5) {
        self.features = features
        self.epsilon = epsilon
    }

    /// `weight` `[features]` (ones) and `bias` `[features]` (zeros).
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [features], initializer: .constant(1)), ParameterSpec(name: "bias", shape: [features], initializer: .zeros)]
    }

    /// Takes the weight and bias slots.
    public func bind(_ slots: [ParameterSlot]) throws {
        guard slots.count == 2, slots.allSatisfy({ $0.shape == [features] }) else {
            throw NNError.bindingMismatch(layer: "LayerNorm(\(features))", expected: 2, got: slots.count)
        }
        weight = slots[0]
        bias = slots[1]
    }

    /// `[…, features]` → the same shape.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard let weight, let bias else { throw NNError.notBound(layer: "LayerNorm") }
        guard input.rank >= 1, input.shape.last == features, features > 0 else {
            throw TensorError.shapeMismatch(operation: "LayerNorm(\(features)).forward (input [..., \(features)])", lhs: input.shape, rhs: [features])
        }
        self.input = input
        let rows = input.count / features
        normalized = [Float](repeating: 0, count: input.count)
        inverseDeviation = [Float](repeating: 0, count: rows)
        return try input.withUnsafeBufferPointer { x in
            try Tensor(shape: input.shape) { y in
                guard let xp = x.baseAddress, let yp = y.baseAddress else { return }
                normalized.withUnsafeMutableBufferPointer { hat in
                    for r in 0..<rows {
                        let row = xp + r * features
                        var mean = 0.0
                        for i in 0..<features { mean += Double(row[i]) }
                        mean /= Double(features)
                        var variance = 0.0
                        for i in 0..<features { variance += (Double(row[i]) - mean) * (Double(row[i]) - mean) }
                        variance /= Double(features)
                        let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
                        inverseDeviation[r] = inverse
                        for i in 0..<features {
                            let value = (row[i] - Float(mean)) * inverse
                            hat[r * features + i] = value
                            yp[r * features + i] = value * weight.values[i] + bias.values[i]
                        }
                    }
                }
            }
        }
    }

    /// ∂w = Σ dy·x̂, ∂b = Σ dy, ∂x = (1/D)·σ⁻¹·(D·g − Σg − x̂·Σ(g·x̂)) with g = dy·w.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let weight, let bias else { throw NNError.notBound(layer: "LayerNorm") }
        guard let input else { throw NNError.noForward(layer: "LayerNorm") }
        guard outputGradient.shape == input.shape else {
            throw TensorError.shapeMismatch(operation: "LayerNorm(\(features)).backward", lhs: outputGradient.shape, rhs: input.shape)
        }
        let rows = input.count / features
        if !options.accumulate {
            weight.gradients.update(repeating: 0, count: features)
            bias.gradients.update(repeating: 0, count: features)
        }
        return try outputGradient.withUnsafeBufferPointer { dy in
            var dx = [Float](repeating: 0, count: options.needsInputGradient ? input.count : 0)
            guard let dyp = dy.baseAddress else { return options.needsInputGradient ? try Tensor(shape: input.shape, scalars: dx) : nil }
            for r in 0..<rows {
                let g = dyp + r * features
                var sum = 0.0, dot = 0.0
                for i in 0..<features {
                    let hat = normalized[r * features + i]
                    weight.gradients[i] += g[i] * hat
                    bias.gradients[i] += g[i]
                    let scaled = Double(g[i] * weight.values[i])
                    sum += scaled
                    dot += scaled * Double(hat)
                }
                guard options.needsInputGradient else { continue }
                let factor = inverseDeviation[r] / Float(features)
                for i in 0..<features {
                    let scaled = g[i] * weight.values[i]
                    dx[r * features + i] = factor * (Float(features) * scaled - Float(sum) - normalized[r * features + i] * Float(dot))
                }
            }
            return options.needsInputGradient ? try Tensor(shape: input.shape, scalars: dx) : nil
        }
    }
}
