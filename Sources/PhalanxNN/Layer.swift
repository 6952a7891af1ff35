import PhalanxTensor

/// What `backward` should do besides propagating the gradient.
public struct BackwardOptions: Sendable, Equatable {
    /// Add into the gradient buffer instead of overwriting it (gradient accumulation).
    public var accumulate: Bool
    /// Compute the gradient with respect to the layer's input (skipped for a model's first layer).
    public var needsInputGradient: Bool

    /// Makes options; the defaults overwrite gradients and compute the input gradient.
    public init(accumulate: Bool = false, needsInputGradient: Bool = true) {
        self.accumulate = accumulate
        self.needsInputGradient = needsInputGradient
    }
}

/// A differentiable building block: `forward` maps `[batch, …]` inputs to outputs and
/// remembers what `backward` needs; `backward` writes parameter gradients and returns the
/// gradient with respect to the input.
///
/// Parameters do not live in the layer: a model (`Sequential`) allocates one flat buffer for
/// every parameter and one for every gradient, and hands each layer its slots with `bind`.
public protocol Layer: AnyObject {
    /// The parameters this layer needs, in the order `bind` receives them.
    var parameterSpecs: [ParameterSpec] { get }

    /// Receives views into the model's flat buffers, one per entry of `parameterSpecs`.
    /// - Throws: `NNError.bindingMismatch` if the slots do not match the specs.
    func bind(_ slots: [ParameterSlot]) throws

    /// Computes the output for `input` and keeps what `backward` needs.
    /// - Throws: `TensorError` if the input has the wrong shape, `NNError.notBound` before `bind`.
    func forward(_ input: Tensor) throws -> Tensor

    /// Given ∂loss/∂output (shape of the last output), writes ∂loss/∂parameters into the
    /// gradient buffer and returns ∂loss/∂input (or `nil` when `options.needsInputGradient` is false).
    /// - Throws: `NNError.noForward` if `forward` was not called, `TensorError` on shape mismatch.
    func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor?
}

extension Layer {
    /// Layers without parameters need none.
    public var parameterSpecs: [ParameterSpec] { [] }

    /// Layers without parameters accept only an empty binding.
    public func bind(_ slots: [ParameterSlot]) throws {
        guard slots.isEmpty else {
            throw NNError.bindingMismatch(layer: String(describing: Self.self), expected: 0, got: slots.count)
        }
    }
}
