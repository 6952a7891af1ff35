import Foundation
import PhalanxTensor

/// Multi-head self-attention over `[batch, time, embed]` (PyTorch's `MultiheadAttention` with
/// `batch_first=True` and query = key = value), optionally causal (position t attends to 0…t,
/// as in a decoder-only transformer).
///
/// Parameters use PyTorch's names and layout: `in_proj_weight` `[3·embed, embed]` (query, key
/// and value rows), `in_proj_bias` `[3·embed]`, `out_proj.weight` `[embed, embed]`,
/// `out_proj.bias` `[embed]`. Every product is a GEMM over OpenBLAS on strided views.
public final class SelfAttention: Layer {
    /// Features per position.
    public let embed: Int
    /// Heads (each of `embed / heads` features).
    public let heads: Int
    /// Whether a position sees only itself and earlier ones.
    public let causal: Bool
    private var inWeight: ParameterSlot?
    private var inBias: ParameterSlot?
    private var outWeight: ParameterSlot?
    private var outBias: ParameterSlot?
    // Kept by forward for backward.
    private var input: Tensor?
    private var projected: [Float] = []  // [batch·time, 3·embed]
    private var probabilities: [Float] = []  // [batch, heads, time, time]
    private var context: [Float] = []  // [batch·time, embed]

    /// Attention with `heads` heads over `embed` features (`embed` divisible by `heads`).
    public init(embed: Int, heads: Int, causal: Bool = true) {
        self.embed = embed
        self.heads = heads
        self.causal = causal
    }

    private var headSize: Int { embed / max(heads, 1) }

    /// PyTorch's four tensors, initialised as PyTorch does (Xavier for the input projection,
    /// ±1/√embed for the output one, zero biases).
    public var parameterSpecs: [ParameterSpec] {
        [
            ParameterSpec(name: "in_proj_weight", shape: [3 * embed, embed], initializer: .xavierUniform(fanIn: embed, fanOut: 3 * embed)),
            ParameterSpec(name: "in_proj_bias", shape: [3 * embed], initializer: .zeros),
            ParameterSpec(name: "out_proj.weight", shape: [embed, embed], initializer: .lecunUniform(fanIn: embed)),
            ParameterSpec(name: "out_proj.bias", shape: [embed], initializer: .zeros),
        ]
    }

    /// Takes the four slots.
    public func bind(_ slots: [ParameterSlot]) throws {
        let specs = parameterSpecs
        guard slots.count == 4, zip(slots, specs).allSatisfy({ $0.shape == $1.shape }) else {
            throw NNError.bindingMismatch(layer: "SelfAttention(embed: \(embed), heads: \(heads))", expected: 4, got: slots.count)
        }
        (inWeight, inBias, outWeight, outBias) = (slots[0], slots[1], slots[2], slots[3])
    }

    /// `[batch, time, embed]` → the same shape.
    public func forward(_ input: Tensor) throws -> Tensor {
        guard let inWeight, let inBias, let outWeight, let outBias else { throw NNError.notBound(layer: "SelfAttention") }
        guard heads >= 1, embed % heads == 0 else {
            throw NNError.invalidHyperparameter(name: "SelfAttention heads", value: Double(heads), reason: "embed \(embed) must split evenly into the heads")
        }
        guard input.rank == 3, input.shape[2] == embed else {
            throw TensorError.shapeMismatch(operation: "SelfAttention.forward (input [batch, time, \(embed)])", lhs: input.shape, rhs: [embed])
        }
        let (batch, time, d) = (input.shape[0], input.shape[1], headSize)
        let rows = batch * time, wide = 3 * embed
        self.input = input
        projected = [Float](repeating: 0, count: rows * wide)
        probabilities = [Float](repeating: 0, count: batch * heads * time * time)
        context = [Float](repeating: 0, count: rows * embed)
        let scale = 1 / Float(d).squareRoot()
        input.withUnsafeBufferPointer { x in
            guard let xp = x.baseAddress else { return }
            projected.withUnsafeMutableBufferPointer { qkvBuffer in
                probabilities.withUnsafeMutableBufferPointer { pBuffer in
                    context.withUnsafeMutableBufferPointer { cBuffer in
                        guard let qkv = qkvBuffer.baseAddress, let p = pBuffer.baseAddress, let c = cBuffer.baseAddress else { return }
                        // QKV = X·W_inᵀ + b_in.
                        for r in 0..<rows { (qkv + r * wide).update(from: inBias.values, count: wide) }
                        Kernels.gemm(transposeA: false, transposeB: true, m: rows, n: wide, k: embed, a: xp, lda: embed,
                                     b: inWeight.values, ldb: embed, beta: 1, c: qkv, ldc: wide)
                        for n in 0..<batch {
                            for h in 0..<heads {
                                let q = qkv + n * time * wide + h * d, k = q + embed, v = q + 2 * embed
                                let s = p + (n * heads + h) * time * time
                                // S = Q·Kᵀ/√d, masked above the diagonal, softmax by row.
                                Kernels.gemm(transposeA: false, transposeB: true, m: time, n: time, k: d, alpha: scale,
                                             a: q, lda: wide, b: k, ldb: wide, beta: 0, c: s, ldc: time)
                                if causal {
                                    for i in 0..<time where i + 1 < time { (s + i * time + i + 1).update(repeating: -.infinity, count: time - i - 1) }
                                }
                                Kernels.softmaxRows(s, s, rows: time, columns: time)
                                // C_h = P·V.
                                Kernels.gemm(transposeA: false, transposeB: false, m: time, n: d, k: time, a: s, lda: time,
                                             b: v, ldb: wide, beta: 0, c: c + n * time * embed + h * d, ldc: embed)
                            }
                        }
                    }
                }
            }
        }
        // Out = C·W_outᵀ + b_out.
        return try Tensor(shape: input.shape) { y in
            guard let yp = y.baseAddress else { return }
            for r in 0..<rows { (yp + r * embed).update(from: outBias.values, count: embed) }
            context.withUnsafeBufferPointer { c in
                guard let cp = c.baseAddress else { return }
                Kernels.gemm(transposeA: false, transposeB: true, m: rows, n: embed, k: embed, a: cp, lda: embed,
                             b: outWeight.values, ldb: embed, beta: 1, c: yp, ldc: embed)
            }
        }
    }

    /// The chain back through the output projection, P·V, the softmax, Q·Kᵀ and the input
    /// projection; the masked entries have zero probability, so they pass no gradient.
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let inWeight, let inBias, let outWeight, let outBias else { throw NNError.notBound(layer: "SelfAttention") }
        guard let input else { throw NNError.noForward(layer: "SelfAttention") }
        guard outputGradient.shape == input.shape else {
            throw TensorError.shapeMismatch(operation: "SelfAttention.backward", lhs: outputGradient.shape, rhs: input.shape)
        }
        let (batch, time, d) = (input.shape[0], input.shape[1], headSize)
        let rows = batch * time, wide = 3 * embed
        let beta: Float = options.accumulate ? 1 : 0
        let scale = 1 / Float(d).squareRoot()
        var contextGradient = [Float](repeating: 0, count: rows * embed)
        var projectedGradient = [Float](repeating: 0, count: rows * wide)
        var scores = [Float](repeating: 0, count: time * time)
        var inputGradient = [Float](repeating: 0, count: options.needsInputGradient ? rows * embed : 0)
        outputGradient.withUnsafeBufferPointer { dyBuffer in
            input.withUnsafeBufferPointer { xBuffer in
                guard let dy = dyBuffer.baseAddress, let x = xBuffer.baseAddress else { return }
                context.withUnsafeBufferPointer { cBuffer in
                    guard let c = cBuffer.baseAddress else { return }
                    // Output projection: ∂W_out = dYᵀ·C, ∂b_out = Σ dY, ∂C = dY·W_out.
                    Kernels.gemm(transposeA: true, transposeB: false, m: embed, n: embed, k: rows, a: dy, lda: embed,
                                 b: c, ldb: embed, beta: beta, c: outWeight.gradients, ldc: embed)
                    Kernels.sumRows(dy, rows: rows, columns: embed, into: outBias.gradients, accumulate: options.accumulate)
                }
                contextGradient.withUnsafeMutableBufferPointer { dcBuffer in
                    projectedGradient.withUnsafeMutableBufferPointer { dqkvBuffer in
                        scores.withUnsafeMutableBufferPointer { dsBuffer in
                            projected.withUnsafeBufferPointer { qkvBuffer in
                                probabilities.withUnsafeBufferPointer { pBuffer in
                                    guard let dc = dcBuffer.baseAddress, let dqkv = dqkvBuffer.baseAddress, let ds = dsBuffer.baseAddress,
                                          let qkv = qkvBuffer.baseAddress, let p = pBuffer.baseAddress else { return }
                                    Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: embed, k: embed, a: dy, lda: embed,
                                                 b: outWeight.values, ldb: embed, beta: 0, c: dc, ldc: embed)
                                    for n in 0..<batch {
                                        for h in 0..<heads {
                                            let offset = n * time * wide + h * d
                                            let (q, k, v) = (qkv + offset, qkv + offset + embed, qkv + offset + 2 * embed)
                                            let (dq, dk, dv) = (dqkv + offset, dqkv + offset + embed, dqkv + offset + 2 * embed)
                                            let probability = p + (n * heads + h) * time * time
                                            let dch = dc + n * time * embed + h * d
                                            // ∂V = Pᵀ·∂C, ∂P = ∂C·Vᵀ.
                                            Kernels.gemm(transposeA: true, transposeB: false, m: time, n: d, k: time, a: probability, lda: time,
                                                         b: dch, ldb: embed, beta: 0, c: dv, ldc: wide)
                                            Kernels.gemm(transposeA: false, transposeB: true, m: time, n: time, k: d, a: dch, lda: embed,
                                                         b: v, ldb: wide, beta: 0, c: ds, ldc: time)
                                            // Softmax: ∂S = P ⊙ (∂P − Σ_j ∂P·P), then the 1/√d scale.
                                            for i in 0..<time {
                                                let pr = probability + i * time, dr = ds + i * time
                                                var dot: Float = 0
                                                for j in 0..<time { dot += pr[j] * dr[j] }
                                                for j in 0..<time { dr[j] = pr[j] * (dr[j] - dot) * scale }
                                            }
                                            // ∂Q = ∂S·K, ∂K = ∂Sᵀ·Q.
                                            Kernels.gemm(transposeA: false, transposeB: false, m: time, n: d, k: time, a: ds, lda: time,
                                                         b: k, ldb: wide, beta: 0, c: dq, ldc: wide)
                                            Kernels.gemm(transposeA: true, transposeB: false, m: time, n: d, k: time, a: ds, lda: time,
                                                         b: q, ldb: wide, beta: 0, c: dk, ldc: wide)
                                        }
                                    }
                                    // Input projection: ∂W_in = ∂QKVᵀ·X, ∂b_in = Σ ∂QKV, ∂X = ∂QKV·W_in.
                                    Kernels.gemm(transposeA: true, transposeB: false, m: wide, n: embed, k: rows, a: dqkv, lda: wide,
                                                 b: x, ldb: embed, beta: beta, c: inWeight.gradients, ldc: embed)
                                    Kernels.sumRows(dqkv, rows: rows, columns: wide, into: inBias.gradients, accumulate: options.accumulate)
                                    guard options.needsInputGradient else { return }
                                    inputGradient.withUnsafeMutableBufferPointer { dxBuffer in
                                        guard let dx = dxBuffer.baseAddress else { return }
                                        Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: embed, k: wide, a: dqkv, lda: wide,
                                                     b: inWeight.values, ldb: embed, beta: 0, c: dx, ldc: embed)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return options.needsInputGradient ? try Tensor(shape: input.shape, scalars: inputGradient) : nil
    }
}
