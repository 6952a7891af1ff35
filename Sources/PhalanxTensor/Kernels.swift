import CBLAS

/// Low-level kernels over raw `Float` memory: the code every `Tensor` operation and every
/// layer ends in. Matrices are row-major; `count` and extents are in elements.
///
/// These functions do not check shapes: callers (the `Tensor` methods, the layers) do.
public enum Kernels {
    /// `C = alpha · op(A) · op(B) + beta · C` through `cblas_sgemm` (row-major).
    ///
    /// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`. `A` is stored `[m, k]`
    /// (`[k, m]` when `transposeA`), `B` is stored `[k, n]` (`[n, k]` when `transposeB`).
    /// Leading dimensions are the stored row lengths. With `k == 0` C becomes `beta · C`.
    @inlinable
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for row in 0..<m { scale(c + row * ldc, count: n, by: beta) }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)),
            beta, c, Int32(max(ldc, 1)))
    }

    /// `y = alpha · A · x + beta · y` for row-major `A` of `[m, n]` (`cblas_sgemv`).
    @inlinable
    public static func gemv(
        m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, x: UnsafePointer<Float>,
        beta: Float = 0, y: UnsafeMutablePointer<Float>
    ) {
        if m == 0 { return }
        if n == 0 { scale(y, count: m, by: beta); return }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(n), x, 1, beta, y, 1)
    }

    /// `y += alpha · x` over `count` elements.
    @inlinable
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += alpha * x[i] }
    }

    /// `x *= alpha` over `count` elements. `alpha == 0` writes zeros (NaNs are not kept).
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by alpha: Float) {
        if alpha == 0 {
            x.update(repeating: 0, count: count)
        } else if alpha != 1 {
            for i in 0..<count { x[i] *= alpha }
        }
    }

    /// `out[i] = a[i] <op> b[i]`; `out` may alias `a` or `b`.
    @inlinable
    public static func binary(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        count: Int, _ op: (Float, Float) -> Float
    ) {
        for i in 0..<count { out[i] = op(a[i], b[i]) }
    }

    /// `out[r, c] = a[r, c] <op> row[c]` for `a` of `[rows, columns]`; `out` may alias `a`.
    @inlinable
    public static func binaryRowBroadcast(
        _ a: UnsafePointer<Float>, row: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        rows: Int, columns: Int, _ op: (Float, Float) -> Float
    ) {
        for r in 0..<rows {
            let base = r * columns
            for c in 0..<columns { out[base + c] = op(a[base + c], row[c]) }
        }
    }

    /// `out[i] = f(a[i])`; `out` may alias `a`.
    @inlinable
    public static func unary(
        _ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, _ f: (Float) -> Float
    ) {
        for i in 0..<count { out[i] = f(a[i]) }
    }

    /// Adds the rows of `a` (`[rows, columns]`) into `out` (`[columns]`), or sets it when
    /// `accumulate` is false. Used for bias gradients.
    @inlinable
    public static func sumRows(
        _ a: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        if !accumulate { out.update(repeating: 0, count: columns) }
        for r in 0..<rows {
            let base = a + r * columns
            for c in 0..<columns { out[c] += base[c] }
        }
    }

    /// Row-wise numerically stable softmax of `[rows, columns]` into `out` (may alias).
    @inlinable
    public static func softmaxRows(
        _ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int
    ) {
        for r in 0..<rows {
            let src = a + r * columns, dst = out + r * columns
            var maxValue = -Float.infinity
            for c in 0..<columns { maxValue = Swift.max(maxValue, src[c]) }
            // The exponentials first (a loop without calls, which vectorises), then their sum.
            for c in 0..<columns { dst[c] = Activations.fastExp(src[c] - maxValue) }
            var total: Float = 0
            for c in 0..<columns { total += dst[c] }
            let inverse = 1 / total
            for c in 0..<columns { dst[c] *= inverse }
        }
    }

    /// Row-wise numerically stable log-softmax of `[rows, columns]` into `out` (may alias).
    @inlinable
    public static func logSoftmaxRows(
        _ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int
    ) {
        for r in 0..<rows {
            let src = a + r * columns, dst = out + r * columns
            var maxValue = -Float.infinity
            for c in 0..<columns { maxValue = Swift.max(maxValue, src[c]) }
            var total: Float = 0
            for c in 0..<columns { total += exp(src[c] - maxValue) }
            // (x − max) − log Σ: subtracting the max first keeps precision for large logits.
            let logTotal = log(total)
            for c in 0..<columns { dst[c] = (src[c] - maxValue) - logTotal }
        }
    }

    /// The sum of `count` elements, accumulated in `Double`.
    @inlinable
    public static func sum(_ a: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        for i in 0..<count { total += Double(a[i]) }
        return total
    }

    /// The sum of squares of `count` elements, accumulated in `Double`.
    @inlinable
    public static func sumOfSquares(_ a: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        for i in 0..<count { let v = Double(a[i]); total += v * v }
        return total
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
