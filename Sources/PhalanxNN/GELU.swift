import PhalanxTensor

/// The exact (erf) GELU elementwise: `0.5 · x · (1 + erf(x/√2))`.
public final class GELU: ElementwiseActivation {
    /// Makes the layer.
    public override init() { super.init() }
    override var name: String { "GELU" }
    override func activate(_ values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] = Activations.gelu(values[i]) }
    }
    override func multiplyByDerivative(
        _ gradient: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, count: Int
    ) {
        for i in 0..<count { gradient[i] *= Activations.geluDerivative(x[i]) }
    }
}
