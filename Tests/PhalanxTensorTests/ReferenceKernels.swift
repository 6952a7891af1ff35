import PhalanxTensor

/// Naive kernels written for clarity, the reference the fast ones are tested against.
enum Reference {
    /// C[i][j] = Σ_k op(A)[i][k]·op(B)[k][j], accumulated in Double.
    static func matmul(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> [Double] {
        let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1]
        let n = tb ? b.shape[0] : b.shape[1]
        func av(_ i: Int, _ p: Int) -> Double { Double(ta ? a.scalars[p * m + i] : a.scalars[i * k + p]) }
        func bv(_ p: Int, _ j: Int) -> Double { Double(tb ? b.scalars[j * k + p] : b.scalars[p * n + j]) }
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += av(i, p) * bv(p, j) } } }
        return c
    }

    /// Sums over `axis` of an N-D tensor, accumulated in Double.
    static func sum(_ t: Tensor, axis: Int) -> [Double] {
        let outer = t.shape[..<axis].reduce(1, *), length = t.shape[axis], inner = t.shape[(axis + 1)...].reduce(1, *)
        var out = [Double](repeating: 0, count: outer * inner)
        for o in 0..<outer { for j in 0..<length { for i in 0..<inner {
            out[o * inner + i] += Double(t.scalars[(o * length + j) * inner + i])
        } } }
        return out
    }

    /// Softmax of each row of a 2-D tensor, in Double.
    static func softmax(_ t: Tensor) -> [Double] {
        let columns = t.shape[1]
        var out: [Double] = []
        for r in 0..<t.shape[0] {
            let row = t.scalars[(r * columns)..<((r + 1) * columns)].map(Double.init)
            let top = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - top) }
            let total = e.reduce(0, +)
            out += e.map { $0 / total }
        }
        return out
    }
}

import Foundation
