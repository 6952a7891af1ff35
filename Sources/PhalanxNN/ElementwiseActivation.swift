import PhalanxTensor

/// The shared part of the parameter-free elementwise activations (`ReLU`, `GELU`, `Tanh`):
/// keeps the forward input and output and checks shapes. Subclasses supply the two loops, so
/// the per-element work is direct code, not a closure call.
public class ElementwiseActivation: Layer {
    private var saved: (input: Tensor, output: Tensor)?

    init() {}

    /// The layer's name in errors.
    var name: String { "ElementwiseActivation" }

    /// Overwrites `values` with f(values). Subclasses override.
    func activate(_ values: UnsafeMutablePointer<Float>, count: Int) {}

    /// Multiplies `gradient` by f'(x) given the forward input `x` and output `y`. Subclasses override.
    func multiplyByDerivative(
        _ gradient: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, count: Int
    ) {}

    /// Applies the activation elementwise; any shape.
    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        output.withUnsafeMutableBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return }
            activate(p, count: buffer.count)
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
        var gradient = outputGradient
        gradient.withUnsafeMutableBufferPointer { dy in
            saved.input.withUnsafeBufferPointer { x in
                saved.output.withUnsafeBufferPointer { y in
                    guard let d = dy.baseAddress, let xp = x.baseAddress, let yp = y.baseAddress else { return }
                    multiplyByDerivative(d, input: xp, output: yp, count: dy.count)
                }
            }
        }
        return gradient
    }
}
