import PhalanxTensor

/// A 2-D pooling layer over `[batch, channels, height, width]`: the largest value of each
/// window (`MaxPool2d`) or its mean (`AvgPool2d`), PyTorch's semantics (floor mode; average
/// pooling counts the zero padding, as `count_include_pad=True`). Use the two subclasses.
public class Pool2d: Layer {
    /// What a window becomes.
    public enum Kind: Sendable, Equatable {
        /// Its largest value (padding never wins); the gradient goes to that element.
        case max
        /// Its mean over the whole window, padding included; the gradient is spread evenly.
        case average
    }

    /// Max or average.
    public let kind: Kind
    /// The window.
    public let kernel: Size2D
    /// The step between windows (by default the window).
    public let stride: Size2D
    /// Padding on each side.
    public let padding: Size2D
    private var inputShape: [Int]?
    private var geometry: ConvGeometry?
    /// For max pooling: the input index each output took its value from.
    private var winners: [Int32] = []

    /// A pooling layer; `stride` defaults to `kernel`.
    public init(_ kind: Kind, kernel: Size2D, stride: Size2D? = nil, padding: Size2D = 0) {
        self.kind = kind
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
    }

    private var name: String { "\(kind == .max ? "MaxPool2d" : "AvgPool2d")(kernel: \(kernel), stride: \(stride), padding: \(padding))" }

    /// `[batch, c, h, w]` → `[batch, c, (h + 2p − k)/s + 1, (w + 2p − k)/s + 1]`.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard kernel.height >= 1, kernel.width >= 1, stride.height >= 1, stride.width >= 1, padding.height >= 0, padding.width >= 0,
              2 * padding.height <= kernel.height, 2 * padding.width <= kernel.width else {
            throw NNError.invalidHyperparameter(name: "pooling window", value: 0, reason: "\(name): kernel and stride must be ≥ 1, padding between 0 and half the kernel")
        }
        guard input.rank == 4 else {
            throw TensorError.shapeMismatch(operation: "\(name).forward (input [batch, channels, height, width])", lhs: input.shape, rhs: [])
        }
        let (batch, channels) = (input.shape[0], input.shape[1])
        let g = try ConvGeometry(channels: 1, height: input.shape[2], width: input.shape[3], kernel: kernel, stride: stride, padding: padding, layer: name)
        inputShape = input.shape
        geometry = g
        let planes = batch * channels
        if kind == .max { winners = [Int32](repeating: 0, count: planes * g.positions) }
        let area = Float(kernel.height * kernel.width)
        return try input.withUnsafeBufferPointer { x in
            try Tensor(shape: [batch, channels, g.outputHeight, g.outputWidth]) { y in
                guard let xp = x.baseAddress, let yp = y.baseAddress else { return }
                for plane in 0..<planes {
                    let source = xp + plane * g.inputSize
                    for oy in 0..<g.outputHeight {
                        for ox in 0..<g.outputWidth {
                            var best = -Float.infinity, winner = -1, total: Float = 0
                            for ki in 0..<kernel.height {
                                let iy = g.inputRow(oy, ki)
                                guard iy >= 0, iy < g.height else { continue }
                                for kj in 0..<kernel.width {
                                    let ix = g.inputColumn(ox, kj)
                                    guard ix >= 0, ix < g.width else { continue }
                                    let value = source[iy * g.width + ix]
                                    total += value
                                    // NaN wins, as in PyTorch.
                                    if value > best || value.isNaN || winner < 0 { best = value; winner = iy * g.width + ix }
                                }
                            }
                            let out = plane * g.positions + oy * g.outputWidth + ox
                            if kind == .max {
                                yp[out] = best
                                winners[out] = Int32(winner)
                            } else {
                                yp[out] = total / area
                            }
                        }
                    }
                }
            }
        }
    }

    /// Max: each output's gradient to the element it took; average: spread over its window.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let shape = inputShape, let g = geometry else { throw NNError.noForward(layer: name) }
        let planes = shape[0] * shape[1]
        guard outputGradient.shape == [shape[0], shape[1], g.outputHeight, g.outputWidth] else {
            throw TensorError.shapeMismatch(operation: "\(name).backward", lhs: outputGradient.shape, rhs: [shape[0], shape[1], g.outputHeight, g.outputWidth])
        }
        guard options.needsInputGradient else { return nil }
        let area = Float(kernel.height * kernel.width)
        return try outputGradient.withUnsafeBufferPointer { dy in
            try Tensor(shape: shape) { dx in
                guard let dxp = dx.baseAddress else { return }
                dxp.update(repeating: 0, count: dx.count)
                guard let dyp = dy.baseAddress else { return }
                for plane in 0..<planes {
                    let target = dxp + plane * g.inputSize
                    for oy in 0..<g.outputHeight {
                        for ox in 0..<g.outputWidth {
                            let out = plane * g.positions + oy * g.outputWidth + ox
                            if kind == .max {
                                target[Int(winners[out])] += dyp[out]
                                continue
                            }
                            let share = dyp[out] / area
                            for ki in 0..<kernel.height {
                                let iy = g.inputRow(oy, ki)
                                guard iy >= 0, iy < g.height else { continue }
                                for kj in 0..<kernel.width {
                                    let ix = g.inputColumn(ox, kj)
                                    if ix >= 0 && ix < g.width { target[iy * g.width + ix] += share }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
