import PhalanxTensor

/// `max(x, 0)` elementwise; the gradient passes where x > 0.
public final class ReLU: ElementwiseActivation {
    /// Makes the layer.
    public override init() { super.init() }
    override var name: String { "ReLU" }
    override func activate(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { output[i] = Activations.relu(input[i]) }
    }
    override func inputGradient(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
        into dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count {
            let g = dy[i]  // an unconditional load lets the loop vectorise as a select
            dx[i] = x[i] > 0 ? g : 0
        }
    }
}
