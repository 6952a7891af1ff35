import PhalanxTensor

/// The hyperbolic tangent elementwise; its gradient is 1 − tanh².
public final class Tanh: ElementwiseActivation {
    /// Makes the layer.
    public override init() { super.init() }
    override var name: String { "Tanh" }
    override func activate(_ values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] = Activations.tanh(values[i]) }
    }
    override func multiplyByDerivative(
        _ gradient: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, count: Int
    ) {
        for i in 0..<count { gradient[i] *= 1 - y[i] * y[i] }
    }
}
