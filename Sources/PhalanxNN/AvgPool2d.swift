/// The mean of each window, zero padding counted (PyTorch's `AvgPool2d` with its defaults).
public final class AvgPool2d: Pool2d {
    /// Average pooling with `kernel`; `stride` defaults to `kernel`.
    public init(kernel: Size2D, stride: Size2D? = nil, padding: Size2D = 0) {
        super.init(.average, kernel: kernel, stride: stride, padding: padding)
    }
}
