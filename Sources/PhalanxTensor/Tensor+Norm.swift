extension Tensor {
    /// The Euclidean (Frobenius) norm √Σx², accumulated in `Double`.
    public func norm() -> Float {
        withUnsafeBufferPointer { b in
            b.baseAddress.map { Float(Kernels.sumOfSquares($0, count: b.count).squareRoot()) } ?? 0
        }
    }

    /// The L1 norm Σ|x|.
    public func normL1() -> Float {
        withUnsafeBufferPointer { b in
            var total = 0.0
            for v in b { total += Double(Swift.abs(v)) }
            return Float(total)
        }
    }

    /// The maximum norm max|x| (0 for an empty tensor).
    public func normInfinity() -> Float { scalars.reduce(0) { Swift.max($0, Swift.abs($1)) } }

    /// The dot product of two tensors of the same shape, accumulated in `Double`.
    /// - Throws: `TensorError.shapeMismatch` if the shapes differ.
    public func dot(_ other: Tensor) throws -> Float {
        guard shape == other.shape else { throw TensorError.shapeMismatch(operation: "dot", lhs: shape, rhs: other.shape) }
        var total = 0.0
        for i in 0..<count { total += Double(scalars[i]) * Double(other.scalars[i]) }
        return Float(total)
    }
}
