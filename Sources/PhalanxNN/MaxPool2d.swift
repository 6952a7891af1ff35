/// The largest value of each window (PyTorch's `MaxPool2d`; padding never wins).
public final class MaxPool2d: Pool2d {
    /// Max pooling with `kernel`; `stride` defaults to `kernel`.
    public init(kernel: Size2D, stride: Size2D? = nil, padding: Size2D = 0) {
        super.init(.max, kernel: kernel, stride: stride, padding: padding)
    }
}
