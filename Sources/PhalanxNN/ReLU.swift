import PhalanxTensor

/// `max(x, 0)` elementwise; the gradient passes where x > 0.
public final class ReLU: ElementwiseActivation {
    /// Makes the layer.
    public override init() { super.init() }
    override var name: String { "ReLU" }
    override func activate(_ values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] = Activations.relu(values[i]) }
    }
    override func multiplyByDerivative(
        _ gradient: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>, count: Int
    ) {
        for i in 0..<count { gradient[i] = x[i] > 0 ? gradient[i] : 0 }
    }
}
