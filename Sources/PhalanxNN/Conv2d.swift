import PhalanxTensor

/// A 2-D convolution over `[batch, inChannels, height, width]` inputs (PyTorch's `Conv2d`,
/// NCHW, cross-correlation), with stride and zero padding: per sample, im2col and one GEMM
/// over OpenBLAS.
///
/// `weight` is `[outChannels, inChannels, kernel.height, kernel.width]` (PyTorch's layout),
/// `bias` is `[outChannels]`.
public final class Conv2d: Layer {
    /// Input planes.
    public let inChannels: Int
    /// Output planes.
    public let outChannels: Int
    /// The window.
    public let kernel: Size2D
    /// The step between windows.
    public let stride: Size2D
    /// Zeros added on each side.
    public let padding: Size2D
    /// Whether the layer has a bias.
    public let hasBias: Bool
    private let weightInit: ParameterInitializer
    private var weight: ParameterSlot?
    private var bias: ParameterSlot?
    private var input: Tensor?
    private var geometry: ConvGeometry?
    private var columns: [Float] = []

    /// A convolution of `inChannels → outChannels` planes with a `kernel` window.
    /// - Parameter initializer: by default Kaiming-uniform over `inChannels × kernel` (fan-in);
    ///   the bias starts at zero.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                bias: Bool = true, initializer: ParameterInitializer? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.hasBias = bias
        weightInit = initializer ?? .kaimingUniform(fanIn: inChannels * kernel.height * kernel.width)
    }

    /// `weight` `[out, in, kh, kw]` and, if present, `bias` `[out]`.
    public var parameterSpecs: [ParameterSpec] {
        var specs = [ParameterSpec(name: "weight", shape: [outChannels, inChannels, kernel.height, kernel.width], initializer: weightInit)]
        if hasBias { specs.append(ParameterSpec(name: "bias", shape: [outChannels], initializer: .zeros)) }
        return specs
    }

    private var name: String { "Conv2d(\(inChannels), \(outChannels), kernel: \(kernel), stride: \(stride), padding: \(padding))" }

    /// Takes the weight (and bias) slots.
    public func bind(_ slots: [ParameterSlot]) throws {
        let specs = parameterSpecs
        guard slots.count == specs.count, zip(slots, specs).allSatisfy({ $0.shape == $1.shape }) else {
            throw NNError.bindingMismatch(layer: name, expected: specs.count, got: slots.count)
        }
        weight = slots[0]
        bias = hasBias ? slots[1] : nil
    }

    /// `[batch, in, h, w]` → `[batch, out, (h + 2p − k)/s + 1, (w + 2p − k)/s + 1]`.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard let weight else { throw NNError.notBound(layer: "Conv2d") }
        guard kernel.height >= 1, kernel.width >= 1, stride.height >= 1, stride.width >= 1, padding.height >= 0, padding.width >= 0 else {
            throw NNError.invalidHyperparameter(name: "Conv2d kernel/stride/padding", value: 0, reason: "\(name): kernel and stride must be ≥ 1, padding ≥ 0")
        }
        guard input.rank == 4, input.shape[1] == inChannels else {
            throw TensorError.shapeMismatch(operation: "\(name).forward (input [batch, \(inChannels), height, width])", lhs: input.shape, rhs: [inChannels])
        }
        let batch = input.shape[0]
        let g = try ConvGeometry(channels: inChannels, height: input.shape[2], width: input.shape[3], kernel: kernel, stride: stride, padding: padding, layer: name)
        self.input = input
        geometry = g
        if columns.count < g.patchSize * g.positions { columns = [Float](repeating: 0, count: g.patchSize * g.positions) }
        return try input.withUnsafeBufferPointer { x in
            try Tensor(shape: [batch, outChannels, g.outputHeight, g.outputWidth]) { y in
                guard let xp = x.baseAddress, let yp = y.baseAddress else { return }
                columns.withUnsafeMutableBufferPointer { col in
                    guard let colp = col.baseAddress else { return }
                    for n in 0..<batch {
                        let out = yp + n * outChannels * g.positions
                        if let bias {
                            for o in 0..<outChannels { (out + o * g.positions).update(repeating: bias.values[o], count: g.positions) }
                        }
                        g.im2col(xp + n * g.inputSize, into: colp)
                        // Y[o, p] = Σ_k W[o, k] · col[k, p] (+ bias).
                        Kernels.gemm(
                            transposeA: false, transposeB: false, m: outChannels, n: g.positions, k: g.patchSize,
                            a: weight.values, lda: g.patchSize, b: colp, ldb: g.positions,
                            beta: bias == nil ? 0 : 1, c: out, ldc: g.positions)
                    }
                }
            }
        }
    }

    /// ∂W = Σ_n dY_n · col_nᵀ, ∂b = Σ dY, ∂x_n = col2im(Wᵀ · dY_n).
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let weight else { throw NNError.notBound(layer: "Conv2d") }
        guard let input, let g = geometry else { throw NNError.noForward(layer: "Conv2d") }
        let batch = input.shape[0]
        guard outputGradient.shape == [batch, outChannels, g.outputHeight, g.outputWidth] else {
            throw TensorError.shapeMismatch(operation: "\(name).backward", lhs: outputGradient.shape, rhs: [batch, outChannels, g.outputHeight, g.outputWidth])
        }
        if !options.accumulate {
            weight.gradients.update(repeating: 0, count: weight.count)
            bias?.gradients.update(repeating: 0, count: outChannels)
        }
        var gradient = [Float](repeating: 0, count: g.patchSize * g.positions)
        var inputGradient: Tensor?
        try outputGradient.withUnsafeBufferPointer { dy in
            try input.withUnsafeBufferPointer { x in
                guard let dyp = dy.baseAddress, let xp = x.baseAddress else {
                    if options.needsInputGradient { inputGradient = try Tensor.zeros(input.shape) }
                    return
                }
                let dx: [Float]? = options.needsInputGradient ? [Float](repeating: 0, count: batch * g.inputSize) : nil
                var dxBuffer = dx ?? []
                columns.withUnsafeMutableBufferPointer { col in
                    gradient.withUnsafeMutableBufferPointer { dcol in
                        dxBuffer.withUnsafeMutableBufferPointer { dxp in
                            guard let colp = col.baseAddress, let dcolp = dcol.baseAddress else { return }
                            for n in 0..<batch {
                                let dyn = dyp + n * outChannels * g.positions
                                g.im2col(xp + n * g.inputSize, into: colp)
                                Kernels.gemm(
                                    transposeA: false, transposeB: true, m: outChannels, n: g.patchSize, k: g.positions,
                                    a: dyn, lda: g.positions, b: colp, ldb: g.positions, beta: 1, c: weight.gradients, ldc: g.patchSize)
                                if let bias {
                                    for o in 0..<outChannels { bias.gradients[o] += Float(Kernels.sum(dyn + o * g.positions, count: g.positions)) }
                                }
                                // (An empty array's buffer may still have a base address.)
                                guard options.needsInputGradient, let dxBase = dxp.baseAddress else { continue }
                                Kernels.gemm(
                                    transposeA: true, transposeB: false, m: g.patchSize, n: g.positions, k: outChannels,
                                    a: weight.values, lda: g.patchSize, b: dyn, ldb: g.positions, beta: 0, c: dcolp, ldc: g.positions)
                                g.col2im(dcolp, into: dxBase + n * g.inputSize)
                            }
                        }
                    }
                }
                if options.needsInputGradient { inputGradient = try Tensor(shape: input.shape, scalars: dxBuffer) }
            }
        }
        return inputGradient
    }
}
