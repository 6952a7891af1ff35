import PhalanxTensor

/// Gradient clipping over a whole flat gradient buffer.
public enum GradientClipping {
    /// Scales `gradients` so that their global L2 norm is at most `maxNorm` (as PyTorch's
    /// `clip_grad_norm_`: factor `maxNorm / (norm + 1e-6)` when the norm exceeds `maxNorm`).
    /// - Returns: the norm before clipping.
    /// - Throws: `NNError.invalidHyperparameter` unless `maxNorm` is finite and ≥ 0.
    @discardableResult
    public static func clipByGlobalNorm(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float) throws -> Float {
        guard maxNorm.isFinite, maxNorm >= 0 else {
            throw NNError.invalidHyperparameter(name: "maxNorm", value: Double(maxNorm), reason: "must be finite and ≥ 0")
        }
        guard let base = gradients.baseAddress else { return 0 }
        let norm = Float(Kernels.sumOfSquares(base, count: gradients.count).squareRoot())
        if norm > maxNorm {
            Kernels.scale(base, count: gradients.count, by: maxNorm / (norm + 1e-6))
        }
        return norm
    }
}
