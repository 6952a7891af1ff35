import PhalanxTensor

/// A stack of layers applied in order, owning one flat buffer of parameters and one of gradients.
///
/// Parameter names are "layers.<i>.<name>", e.g. "layers.0.weight"; `store.layout` lists them.
public final class Sequential {
    /// The layers, first to last.
    public let layers: [any Layer]
    /// Every parameter and gradient of the model, in two flat buffers.
    public let store: ParameterStore

    /// Builds the model, allocates its buffers and initialises every parameter from `generator`
    /// in layout order (so the same seed gives the same model everywhere).
    /// - Throws: `NNError` if a layer rejects its binding.
    public init(_ layers: [any Layer], generator: inout SeededGenerator) throws {
        self.layers = layers
        var layout = ParameterLayout()
        var perLayer: [[(String, [Int], Int)]] = []
        for (i, layer) in layers.enumerated() {
            var entries: [(String, [Int], Int)] = []
            for spec in layer.parameterSpecs {
                let name = "layers.\(i).\(spec.name)"
                entries.append((name, spec.shape, try layout.append(name: name, shape: spec.shape)))
            }
            perLayer.append(entries)
        }
        store = ParameterStore(layout: layout)
        for (layer, entries) in zip(layers, perLayer) {
            let slots = entries.map { ParameterSlot(name: $0.0, shape: $0.1, offset: $0.2, store: store) }
            for (slot, spec) in zip(slots, layer.parameterSpecs) {
                spec.initializer.fill(slot.values, count: slot.count, generator: &generator)
            }
            try layer.bind(slots)
        }
    }

    /// Convenience: builds the model with a generator seeded by `seed`.
    public convenience init(_ layers: [any Layer], seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        try self.init(layers, generator: &generator)
    }

    /// The number of scalar parameters.
    public var parameterCount: Int { store.count }

    /// Runs every layer in order.
    /// - Throws: the first layer error (shape mismatch and the like).
    public func forward(_ input: Tensor) throws -> Tensor {
        var x = input
        for layer in layers { x = try layer.forward(x) }
        return x
    }

    /// Back-propagates ∂loss/∂output through every layer, writing (or with `accumulate`,
    /// adding) all parameter gradients into `store.gradients`. Returns ∂loss/∂input when
    /// `needsInputGradient`, otherwise `nil` (the first layer then skips that product).
    /// - Throws: `NNError.noForward` without a preceding `forward`, `TensorError` on shapes.
    @discardableResult
    public func backward(_ outputGradient: Tensor, accumulate: Bool = false, needsInputGradient: Bool = false) throws -> Tensor? {
        var gradient: Tensor? = outputGradient
        for (i, layer) in layers.enumerated().reversed() {
            guard let g = gradient else { break }
            let options = BackwardOptions(accumulate: accumulate, needsInputGradient: i > 0 || needsInputGradient)
            gradient = try layer.backward(g, options: options)
        }
        return gradient
    }
}
