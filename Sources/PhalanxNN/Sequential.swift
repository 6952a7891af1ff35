import PhalanxTensor

/// A stack of layers applied in order, owning one flat buffer of parameters and one of gradients.
///
/// Parameter names are "layers.<i>.<name>", e.g. "layers.0.weight"; `store.layout` lists them.
public final class Sequential {
    /// The layers, first to last.
    public let layers: [any Layer]
    /// Every parameter and gradient of the model, in two flat buffers.
    public let store: ParameterStore
    /// Where each layer's parameters start in the flat buffers (layer order is buffer order;
    /// a layer without parameters starts where the next one does).
    public let parameterStarts: [Int]
    /// Every `Dropout` of the model, also inside residual blocks, named by its place
    /// ("layers.3", "layers.2.1" for the second layer of block 2). Found once: layers are fixed.
    public let dropouts: [(name: String, layer: Dropout)]

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
        var starts = [Int](repeating: layout.totalCount, count: layers.count)
        var next = layout.totalCount
        for index in layers.indices.reversed() {
            if let first = perLayer[index].first { next = first.2 }
            starts[index] = next
        }
        parameterStarts = starts
        dropouts = Self.dropouts(in: layers, prefix: "layers.")
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
    ///
    /// `gradientsReady`, if given, is called after each layer with the offset from which every
    /// gradient in `store.gradients` is final (back-propagation finishes the buffer from its end
    /// towards its start): what a bucketed all-reduce overlapping backward waits for.
    @discardableResult
    public func backward(
        _ outputGradient: Tensor, accumulate: Bool = false, needsInputGradient: Bool = false, gradientsReady: ((Int) throws -> Void)? = nil
    ) throws -> Tensor? {
        var gradient: Tensor? = outputGradient
        for (i, layer) in layers.enumerated().reversed() {
            guard let g = gradient else { break }
            let options = BackwardOptions(accumulate: accumulate, needsInputGradient: i > 0 || needsInputGradient)
            gradient = try layer.backward(g, options: options)
            try gradientsReady?(parameterStarts[i])
        }
        return gradient
    }

    /// The dropouts among `layers` and inside their residual blocks, named from `prefix`.
    private static func dropouts(in layers: [any Layer], prefix: String) -> [(name: String, layer: Dropout)] {
        layers.enumerated().flatMap { index, layer -> [(name: String, layer: Dropout)] in
            if let dropout = layer as? Dropout { return [("\(prefix)\(index)", dropout)] }
            if let block = layer as? Residual { return dropouts(in: block.layers, prefix: "\(prefix)\(index).") }
            return []
        }
    }

    /// Training mode (dropout masks) or evaluation mode (dropout is the identity). True at the start.
    public var training: Bool = true {
        didSet { for dropout in dropouts { dropout.layer.training = training } }
    }

    /// Keys the next forward's dropout masks by `draw` (a training loop passes the step) and
    /// `firstSample` (the global index of the batch's first sample), so that members splitting
    /// a global batch, a resumed run and a redone step all draw the masks one process would.
    public func setRandomStream(draw: Int, firstSample: Int) {
        for dropout in dropouts {
            dropout.layer.draw = draw
            dropout.layer.firstSample = firstSample
        }
    }
}
