import PhalanxTensor

/// A residual block: `y = x + f(x)`, where `f` is `layers` applied in order (the same shape in
/// and out). Its parameters are its layers', named "<i>.<name>" inside the block (a model names
/// them "layers.<k>.<i>.<name>"). Blocks nest, so models go beyond one flat `Sequential`.
public final class Residual: Layer {
    /// The layers of `f`, first to last.
    public let layers: [any Layer]
    private var inputShape: [Int]?

    /// `x + layers(x)`.
    public init(_ layers: [any Layer]) {
        self.layers = layers
    }

    /// Every inner layer's parameters, in order, prefixed by the layer's position.
    public var parameterSpecs: [ParameterSpec] {
        layers.enumerated().flatMap { index, layer in
            layer.parameterSpecs.map { spec in
                var named = spec
                named.name = "\(index).\(spec.name)"
                return named
            }
        }
    }

    /// Hands each inner layer its share of the slots.
    public func bind(_ slots: [ParameterSlot]) throws {
        let counts = layers.map { $0.parameterSpecs.count }
        guard slots.count == counts.reduce(0, +) else {
            throw NNError.bindingMismatch(layer: "Residual", expected: counts.reduce(0, +), got: slots.count)
        }
        var start = 0
        for (layer, count) in zip(layers, counts) {
            try layer.bind(Array(slots[start..<(start + count)]))
            start += count
        }
    }

    /// `x + f(x)`.
    /// - Throws: `TensorError.shapeMismatch` when `f` changes the shape.
    public func forward(_ input: Tensor) throws -> Tensor {
        var x = input
        for layer in layers { x = try layer.forward(x) }
        guard x.shape == input.shape else {
            throw TensorError.shapeMismatch(operation: "Residual: the block's output must have its input's shape", lhs: x.shape, rhs: input.shape)
        }
        inputShape = input.shape
        return try x + input
    }

    /// `dx = dy + f'(x)ᵀ·dy`.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard inputShape != nil else { throw NNError.noForward(layer: "Residual") }
        var gradient: Tensor? = outputGradient
        for (index, layer) in layers.enumerated().reversed() {
            guard let g = gradient else { break }
            // The block's first layer owes an input gradient only when the block does.
            let inner = BackwardOptions(accumulate: options.accumulate, needsInputGradient: index > 0 || options.needsInputGradient)
            gradient = try layer.backward(g, options: inner)
        }
        guard options.needsInputGradient else { return nil }
        guard let through = gradient else { return outputGradient }
        return try through + outputGradient
    }
}
