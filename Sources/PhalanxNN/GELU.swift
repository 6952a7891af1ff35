import PhalanxTensor

/// The exact (erf) GELU elementwise: `0.5 · x · (1 + erf(x/√2))`.
public final class GELU: ElementwiseActivation {
    /// Makes the layer.
    public override init() { super.init() }
    override var name: String { "GELU" }
    override func activate(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { output[i] = Activations.gelu(input[i]) }
    }
    override func inputGradient(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
        into dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count { dx[i] = dy[i] * Activations.geluDerivative(x[i]) }
    }
}
