import PhalanxTensor

/// Learned positions (GPT-2's `wpe`): adds row `t` of a `[maxLength, dimension]` table to every
/// token at position `t` of a `[batch, tokens, dimension]` input, for any `tokens ≤ maxLength`.
public final class PositionalEmbedding: Layer {
    /// The longest sequence the table covers.
    public let maxLength: Int
    /// Values per position.
    public let dimension: Int
    private var weight: ParameterSlot?
    private var inputShape: [Int]?

    /// A table of `maxLength` positions of `dimension` values, drawn from N(0, 0.02²) as GPT-2's.
    public init(maxLength: Int, dimension: Int) {
        self.maxLength = maxLength
        self.dimension = dimension
    }

    /// `weight` `[maxLength, dimension]`.
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [maxLength, dimension], initializer: .normal(standardDeviation: 0.02))]
    }

    /// Takes the weight slot.
    public func bind(_ slots: [ParameterSlot]) throws {
        guard slots.count == 1, slots[0].shape == [maxLength, dimension] else {
            throw NNError.bindingMismatch(layer: "PositionalEmbedding(\(maxLength), \(dimension))", expected: 1, got: slots.count)
        }
        weight = slots[0]
    }

    /// `x[b, t, :] + weight[t, :]`.
    /// - Throws: `TensorError.shapeMismatch` unless the input is `[batch, tokens ≤ maxLength, dimension]`.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard let weight else { throw NNError.notBound(layer: "PositionalEmbedding") }
        guard input.rank == 3, input.shape[1] <= maxLength, input.shape[2] == dimension else {
            throw TensorError.shapeMismatch(operation: "PositionalEmbedding.forward ([batch, ≤ \(maxLength), \(dimension)])", lhs: input.shape, rhs: [maxLength, dimension])
        }
        inputShape = input.shape
        let rowLength = input.shape[1] * dimension
        var y = input.scalars
        for start in stride(from: 0, to: y.count, by: max(rowLength, 1)) {
            for i in 0..<rowLength { y[start + i] += weight.values[i] }
        }
        return try Tensor(shape: input.shape, scalars: y)
    }

    /// ∂weight[t] = Σ_b dy[b, t]; ∂x = dy.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let weight else { throw NNError.notBound(layer: "PositionalEmbedding") }
        guard let inputShape else { throw NNError.noForward(layer: "PositionalEmbedding") }
        guard outputGradient.shape == inputShape else {
            throw TensorError.shapeMismatch(operation: "PositionalEmbedding.backward", lhs: outputGradient.shape, rhs: inputShape)
        }
        let rowLength = inputShape[1] * dimension
        if !options.accumulate { weight.gradients.update(repeating: 0, count: weight.count) }
        outputGradient.scalars.withUnsafeBufferPointer { dy in
            for start in stride(from: 0, to: dy.count, by: max(rowLength, 1)) {
                for i in 0..<rowLength { weight.gradients[i] += dy[start + i] }
            }
        }
        return options.needsInputGradient ? outputGradient : nil
    }
}
