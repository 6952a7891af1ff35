import PhalanxTensor

/// A fully connected layer: `y = x · Wᵀ + b` for `x` of `[batch, inputSize]`.
///
/// `weight` is `[outputSize, inputSize]` (PyTorch's layout), `bias` is `[outputSize]`.
public final class Linear: Layer {
    /// Input features per sample.
    public let inputSize: Int
    /// Output features per sample.
    public let outputSize: Int
    /// Whether the layer has a bias.
    public let hasBias: Bool
    private let weightInit: ParameterInitializer
    private var weight: ParameterSlot?
    private var bias: ParameterSlot?
    private var input: Tensor?

    /// Makes a layer of `inputSize → outputSize` features.
    /// - Parameter initializer: the weight initialiser; by default Kaiming-uniform over `inputSize`.
    ///   The bias starts at zero.
    public init(_ inputSize: Int, _ outputSize: Int, bias: Bool = true, initializer: ParameterInitializer? = nil) {
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.hasBias = bias
        self.weightInit = initializer ?? .kaimingUniform(fanIn: inputSize)
    }

    /// `weight` `[out, in]` and, if present, `bias` `[out]`.
    public var parameterSpecs: [ParameterSpec] {
        var specs = [ParameterSpec(name: "weight", shape: [outputSize, inputSize], initializer: weightInit)]
        if hasBias { specs.append(ParameterSpec(name: "bias", shape: [outputSize], initializer: .zeros)) }
        return specs
    }

    /// Takes the weight (and bias) slots.
    public func bind(_ slots: [ParameterSlot]) throws {
        let specs = parameterSpecs
        guard slots.count == specs.count, zip(slots, specs).allSatisfy({ $0.shape == $1.shape }) else {
            throw NNError.bindingMismatch(layer: "Linear(\(inputSize), \(outputSize))", expected: specs.count, got: slots.count)
        }
        weight = slots[0]
        bias = hasBias ? slots[1] : nil
    }

    /// `[…, inputSize]` → `[…, outputSize]`: every leading dimension is batch (a sequence model's
    /// `[batch, tokens, features]` maps each token), as in PyTorch.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard let weight else { throw NNError.notBound(layer: "Linear") }
        guard input.rank >= 2, input.shape[input.rank - 1] == inputSize else {
            throw TensorError.shapeMismatch(operation: "Linear.forward", lhs: input.shape, rhs: [outputSize, inputSize])
        }
        self.input = input
        let batch = Self.rows(of: input.shape)
        return try input.withUnsafeBufferPointer { x in
            try Tensor(shape: Array(input.shape.dropLast()) + [outputSize]) { y in
                guard let yp = y.baseAddress else { return }
                // The bias rows first, then Y += X·Wᵀ (or Y = X·Wᵀ without a bias).
                if let bias {
                    for r in 0..<batch { (yp + r * outputSize).update(from: bias.values, count: outputSize) }
                }
                guard let xp = x.baseAddress, inputSize > 0 else {
                    if bias == nil { yp.update(repeating: 0, count: y.count) }
                    return
                }
                Kernels.gemm(
                    transposeA: false, transposeB: true, m: batch, n: outputSize, k: inputSize,
                    a: xp, lda: inputSize, b: weight.values, ldb: inputSize,
                    beta: bias == nil ? 0 : 1, c: yp, ldc: outputSize)
            }
        }
    }

    /// ∂W = dyᵀ·x, ∂b = Σ_rows dy, ∂x = dy·W.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let weight else { throw NNError.notBound(layer: "Linear") }
        guard let input else { throw NNError.noForward(layer: "Linear") }
        let batch = Self.rows(of: input.shape)
        let outputShape = Array(input.shape.dropLast()) + [outputSize]
        guard outputGradient.shape == outputShape else {
            throw TensorError.shapeMismatch(operation: "Linear.backward", lhs: outputGradient.shape, rhs: outputShape)
        }
        let beta: Float = options.accumulate ? 1 : 0
        var inputGradient: Tensor? = nil
        try outputGradient.withUnsafeBufferPointer { dy in
            input.withUnsafeBufferPointer { x in
                if let dyp = dy.baseAddress, let xp = x.baseAddress {
                    Kernels.gemm(
                        transposeA: true, transposeB: false, m: outputSize, n: inputSize, k: batch,
                        a: dyp, lda: outputSize, b: xp, ldb: inputSize, beta: beta, c: weight.gradients, ldc: inputSize)
                } else if !options.accumulate {
                    // An empty batch (or no inputs): ∂W is zero.
                    weight.gradients.update(repeating: 0, count: weight.count)
                }
            }
            if let bias {
                if let dyp = dy.baseAddress {
                    Kernels.sumRows(dyp, rows: batch, columns: outputSize, into: bias.gradients, accumulate: options.accumulate)
                } else if !options.accumulate {
                    bias.gradients.update(repeating: 0, count: outputSize)
                }
            }
            guard options.needsInputGradient else { return }
            inputGradient = try Tensor(shape: input.shape) { dx in
                guard let dxp = dx.baseAddress else { return }
                guard let dyp = dy.baseAddress else {
                    dxp.update(repeating: 0, count: dx.count)
                    return
                }
                Kernels.gemm(
                    transposeA: false, transposeB: false, m: batch, n: inputSize, k: outputSize,
                    a: dyp, lda: outputSize, b: weight.values, ldb: inputSize, beta: 0, c: dxp, ldc: inputSize)
            }
        }
        return inputGradient
    }

    /// The rows of the matrix product: every dimension but the last.
    private static func rows(of shape: [Int]) -> Int { shape.dropLast().reduce(1, *) }
}
