extension Tensor {
    /// The matrix product `op(self) · op(other)` through `cblas_sgemm`.
    ///
    /// `self` is `[m, k]` (or `[k, m]` with `transposeSelf`), `other` is `[k, n]` (or `[n, k]`
    /// with `transposeOther`); the result is `[m, n]`.
    /// - Throws: `TensorError.rankMismatch` unless both are 2-D, `TensorError.shapeMismatch`
    ///   if the inner extents differ.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) throws -> Tensor {
        let (m, n, k) = try Tensor.matmulExtents(self, other, transposeSelf, transposeOther)
        return Tensor(uncheckedShape: [m, n]) { out in
            guard let c = out.baseAddress else { return }
            self.withUnsafeBufferPointer { a in
                other.withUnsafeBufferPointer { b in
                    Self.gemm(a, b, c, m, n, k, transposeSelf, transposeOther, beta: 0)
                }
            }
        }
    }

    /// Writes `alpha · op(a) · op(b) + beta · out` into `out`, which must be `[m, n]`;
    /// the allocation-free form of `matmul`.
    /// - Throws: as `matmul`, and `TensorError.shapeMismatch` if `out` is not `[m, n]`.
    public static func matmul(
        _ a: Tensor, _ b: Tensor, into out: inout Tensor,
        transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1, beta: Float = 0
    ) throws {
        let (m, n, k) = try matmulExtents(a, b, transposeA, transposeB)
        guard out.shape == [m, n] else {
            throw TensorError.shapeMismatch(operation: "matmul(into:)", lhs: [m, n], rhs: out.shape)
        }
        out.withUnsafeMutableBufferPointer { c in
            guard let cBase = c.baseAddress else { return }
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    gemm(ab, bb, cBase, m, n, k, transposeA, transposeB, alpha: alpha, beta: beta)
                }
            }
        }
    }

    /// The matrix–vector product: `self` is `[m, n]`, `vector` is `[n]`, the result `[m]`.
    /// - Throws: `TensorError.rankMismatch` / `.shapeMismatch` on other shapes.
    public func matvec(_ vector: Tensor) throws -> Tensor {
        guard rank == 2 else { throw TensorError.rankMismatch(operation: "matvec", expected: 2, shape: shape) }
        guard vector.rank == 1, vector.shape[0] == shape[1] else {
            throw TensorError.shapeMismatch(operation: "matvec", lhs: shape, rhs: vector.shape)
        }
        let m = shape[0], n = shape[1]
        guard m <= Int(Int32.max), n <= Int(Int32.max) else {
            throw TensorError.invalidShape(shape, reason: "BLAS takes extents below 2^31")
        }
        return Tensor(uncheckedShape: [m]) { out in
            guard let y = out.baseAddress else { return }
            self.withUnsafeBufferPointer { a in
                vector.withUnsafeBufferPointer { x in
                    guard let aBase = a.baseAddress, let xBase = x.baseAddress else {
                        y.update(repeating: 0, count: m)
                        return
                    }
                    Kernels.gemv(m: m, n: n, a: aBase, x: xBase, y: y)
                }
            }
        }
    }

    static func matmulExtents(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) throws -> (Int, Int, Int) {
        guard a.rank == 2 else { throw TensorError.rankMismatch(operation: "matmul", expected: 2, shape: a.shape) }
        guard b.rank == 2 else { throw TensorError.rankMismatch(operation: "matmul", expected: 2, shape: b.shape) }
        let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1]
        let kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1]
        guard k == kb else {
            throw TensorError.shapeMismatch(
                operation: "matmul(transposeSelf: \(ta), transposeOther: \(tb))", lhs: a.shape, rhs: b.shape)
        }
        guard [m, n, k].allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw TensorError.invalidShape([m, n, k], reason: "BLAS takes extents below 2^31")
        }
        return (m, n, k)
    }

    private static func gemm(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, _ c: UnsafeMutablePointer<Float>,
        _ m: Int, _ n: Int, _ k: Int, _ ta: Bool, _ tb: Bool, alpha: Float = 1, beta: Float
    ) {
        guard let aBase = a.baseAddress, let bBase = b.baseAddress, k > 0 else {
            // k == 0 (or an empty operand): the product is zero.
            Kernels.scale(c, count: m * n, by: beta)
            return
        }
        Kernels.gemm(
            transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha,
            a: aBase, lda: ta ? m : k, b: bBase, ldb: tb ? k : n, beta: beta, c: c, ldc: n)
    }
}
