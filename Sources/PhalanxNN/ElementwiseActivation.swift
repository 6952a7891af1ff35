import PhalanxTensor

/// The shared part of the parameter-free elementwise activations (`ReLU`, `GELU`, `Tanh`):
/// keeps the forward input and output and checks shapes. Subclasses supply the two loops, so
/// the per-element work is direct code, not a closure call.
public class ElementwiseActivation: Layer {
    private var saved: (input: Tensor, output: Tensor)?

    init() {}

    /// The layer's name in errors.
    var name: String { "ElementwiseActivation" }

    /// Writes `output[i] = f(input[i])`. Subclasses override.
    func activate(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {}

    /// Writes `dx[i] = dy[i] · f'(x[i])` given the forward input `x` and output `y`. Subclasses override.
    func inputGradient(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
        into dx: UnsafeMutablePointer<Float>, count: Int
    ) {}

    /// Applies the activation elementwise; any shape.
    public func forward(_ input: Tensor) throws -> Tensor {
        let output = try input.withUnsafeBufferPointer { x in
            try Tensor(shape: input.shape) { y in
                guard let xp = x.baseAddress, let yp = y.baseAddress else { return }
                activate(xp, into: yp, count: x.count)
            }
        }
        saved = (input, output)
        return output
    }

    /// `dx = dy · f'(x)` elementwise; the shape of the last input.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let saved else { throw NNError.noForward(layer: name) }
        guard outputGradient.shape == saved.input.shape else {
            throw TensorError.shapeMismatch(operation: "\(name).backward", lhs: outputGradient.shape, rhs: saved.input.shape)
        }
        guard options.needsInputGradient else { return nil }
        return try outputGradient.withUnsafeBufferPointer { dy in
            try saved.input.withUnsafeBufferPointer { x in
                try saved.output.withUnsafeBufferPointer { y in
                    try Tensor(shape: outputGradient.shape) { dx in
                        guard let dyp = dy.baseAddress, let xp = x.baseAddress, let yp = y.baseAddress, let dxp = dx.baseAddress
                        else { return }
                        inputGradient(dyp, input: xp, output: yp, into: dxp, count: dy.count)
                    }
                }
            }
        }
    }
}
