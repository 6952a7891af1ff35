import PhalanxTensor

/// `[batch, …]` → `[batch] + shape` (e.g. 64 pixels into `[1, 8, 8]` before a convolution);
/// the gradient goes back to the input's shape.
public final class Reshape: Layer {
    /// The shape of each sample after the layer.
    public let shape: [Int]
    private var inputShape: [Int]?

    /// Reshapes each sample to `shape`.
    public init(_ shape: [Int]) {
        self.shape = shape
    }

    /// Keeps the batch dimension, gives each sample `shape`.
    /// - Throws: `TensorError.shapeMismatch` when a sample has another number of elements.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1, input.shape.dropFirst().reduce(1, *) == shape.reduce(1, *) else {
            throw TensorError.shapeMismatch(operation: "Reshape.forward (each sample to \(shape))", lhs: input.shape, rhs: shape)
        }
        inputShape = input.shape
        return try input.reshaped([input.shape[0]] + shape)
    }

    /// The gradient in the input's shape.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let inputShape else { throw NNError.noForward(layer: "Reshape") }
        guard options.needsInputGradient else { return nil }
        return try outputGradient.reshaped(inputShape)
    }
}
