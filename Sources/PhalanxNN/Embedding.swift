import PhalanxTensor

/// A lookup table of `count` vectors of `dimension` values (PyTorch's `Embedding`): an input
/// of token ids (whole numbers stored as floats) of any shape `[…]` becomes `[…, dimension]`.
/// `weight` is `[count, dimension]`, drawn from a standard normal as in PyTorch.
public final class Embedding: Layer {
    /// Rows of the table (the vocabulary).
    public let count: Int
    /// Values per row.
    public let dimension: Int
    private var weight: ParameterSlot?
    private var indices: [Int] = []
    private var inputShape: [Int]?

    /// A table of `count` rows of `dimension` values.
    public init(_ count: Int, _ dimension: Int) {
        self.count = count
        self.dimension = dimension
    }

    /// `weight` `[count, dimension]`.
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [count, dimension], initializer: .normal(standardDeviation: 1))]
    }

    /// Takes the weight slot.
    public func bind(_ slots: [ParameterSlot]) throws {
        guard slots.count == 1, slots[0].shape == [count, dimension] else {
            throw NNError.bindingMismatch(layer: "Embedding(\(count), \(dimension))", expected: 1, got: slots.count)
        }
        weight = slots[0]
    }

    /// Ids `[…]` → vectors `[…, dimension]`.
    /// - Throws: `NNError.invalidIndex` for an id that is not a whole number in `0..<count`.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard let weight else { throw NNError.notBound(layer: "Embedding") }
        var ids: [Int] = []
        ids.reserveCapacity(input.count)
        for (position, value) in input.scalars.enumerated() {
            guard value.isFinite, value >= 0, value < Float(count), value.rounded() == value else {
                throw NNError.invalidIndex(position: position, value: value, count: count)
            }
            ids.append(Int(value))
        }
        indices = ids
        inputShape = input.shape
        return try Tensor(shape: input.shape + [dimension]) { y in
            guard let yp = y.baseAddress else { return }
            for (row, id) in ids.enumerated() { (yp + row * dimension).update(from: weight.values + id * dimension, count: dimension) }
        }
    }

    /// Adds each output row's gradient to its id's row of ∂weight; ids have no gradient (zeros).
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let weight else { throw NNError.notBound(layer: "Embedding") }
        guard let inputShape else { throw NNError.noForward(layer: "Embedding") }
        guard outputGradient.shape == inputShape + [dimension] else {
            throw TensorError.shapeMismatch(operation: "Embedding.backward", lhs: outputGradient.shape, rhs: inputShape + [dimension])
        }
        if !options.accumulate { weight.gradients.update(repeating: 0, count: weight.count) }
        outputGradient.withUnsafeBufferPointer { dy in
            guard let dyp = dy.baseAddress else { return }
            for (row, id) in indices.enumerated() {
                Kernels.axpy(1, dyp + row * dimension, weight.gradients + id * dimension, count: dimension)
            }
        }
        return options.needsInputGradient ? try Tensor.zeros(inputShape) : nil
    }
}
