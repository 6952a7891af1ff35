import PhalanxTensor

/// `[batch, …]` → `[batch, product of the rest]` (between convolutions and `Linear`).
public final class Flatten: Layer {
    private var inputShape: [Int]?

    /// A flattening layer.
    public init() {}

    /// Keeps the batch dimension, joins the others.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1 else { throw TensorError.shapeMismatch(operation: "Flatten.forward (input [batch, …])", lhs: input.shape, rhs: []) }
        inputShape = input.shape
        return try input.reshaped([input.shape[0], input.shape.dropFirst().reduce(1, *)])
    }

    /// The gradient in the input's shape.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let inputShape else { throw NNError.noForward(layer: "Flatten") }
        guard options.needsInputGradient else { return nil }
        return try outputGradient.reshaped(inputShape)
    }
}
