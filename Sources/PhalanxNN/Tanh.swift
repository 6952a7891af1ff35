import PhalanxTensor

/// The hyperbolic tangent elementwise; its gradient is 1 − tanh².
public final class Tanh: ElementwiseActivation {
    /// Makes the layer.
    public override init() { super.init() }
    override var name: String { "Tanh" }
    override func activate(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { output[i] = Activations.tanh(input[i]) }
    }
    override func inputGradient(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
        into dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    }
}
