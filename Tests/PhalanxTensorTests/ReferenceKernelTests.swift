import PhalanxTensor
import Testing

/// The fast kernels against the naive reference kernels on odd shapes.
@Suite struct ReferenceKernelTests {
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 7, 1), (7, 1, 7), (3, 5, 2), (13, 17, 11), (31, 1, 29), (2, 37, 3), (64, 33, 65)]

    @Test(arguments: shapes, [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesReference(shape: (Int, Int, Int), transposes: (Bool, Bool)) throws {
        let (m, k, n) = shape
        var generator = SeededGenerator(seed: UInt64(m * 10_000 + k * 100 + n))
        let a = try Tensor.normal(transposes.0 ? [k, m] : [m, k], generator: &generator)
        let b = try Tensor.normal(transposes.1 ? [n, k] : [k, n], generator: &generator)
        let c = try a.matmul(b, transposeSelf: transposes.0, transposeOther: transposes.1)
        #expect(c.shape == [m, n])
        let reference = Reference.matmul(a, b, transposes.0, transposes.1)
        #expect(mismatch(c.scalars, reference, atol: 1e-4, rtol: 1e-4) == nil)

        // The allocation-free form with alpha and beta: out = 2·AB + 0.5·out.
        var out = try Tensor.full([m, n], 3)
        try Tensor.matmul(a, b, into: &out, transposeA: transposes.0, transposeB: transposes.1, alpha: 2, beta: 0.5)
        #expect(mismatch(out.scalars, reference.map { 2 * $0 + 1.5 }, atol: 1e-4, rtol: 1e-4) == nil)
    }

    @Test func emptyInnerDimensionGivesZeros() throws {
        let c = try Tensor.zeros([4, 0]).matmul(try Tensor.zeros([0, 3]))
        #expect(c == (try Tensor.zeros([4, 3])))
        let empty = try Tensor.zeros([0, 5]).matmul(try Tensor.ones([5, 2]))
        #expect(empty.shape == [0, 2])
    }

    @Test(arguments: [[1, 1], [1, 9], [9, 1], [7, 13], [2, 3, 5], [4, 1, 3, 2]])
    func reductionsMatchReference(shape: [Int]) throws {
        var generator = SeededGenerator(seed: UInt64(shape.reduce(7, *)))
        let t = try Tensor.normal(shape, generator: &generator)
        for axis in 0..<shape.count {
            let sum = try t.sum(axis: axis)
            var expectedShape = shape
            expectedShape.remove(at: axis)
            #expect(sum.shape == expectedShape)
            #expect(mismatch(sum.scalars, Reference.sum(t, axis: axis), atol: 1e-5, rtol: 1e-5) == nil)
            let mean = try t.mean(axis: axis)
            #expect(mismatch(mean.scalars, Reference.sum(t, axis: axis).map { $0 / Double(shape[axis]) }, atol: 1e-5, rtol: 1e-5) == nil)
        }
        #expect(abs(Double(t.sum()) - t.scalars.map(Double.init).reduce(0, +)) < 1e-5)
        // max and argmax against a naive scan along each axis.
        for axis in 0..<shape.count {
            let outer = shape[..<axis].reduce(1, *), length = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
            var maxima: [Float] = [], indices: [Int] = []
            for o in 0..<outer {
                for i in 0..<inner {
                    let column = (0..<length).map { t.scalars[(o * length + $0) * inner + i] }
                    let best = column.max() ?? 0
                    maxima.append(best)
                    indices.append(column.firstIndex(of: best) ?? -1)
                }
            }
            #expect(try t.max(axis: axis).scalars == maxima)
            #expect(try t.argmax(axis: axis) == indices)
        }
    }

    @Test(arguments: [(1, 1), (1, 10), (7, 13), (3, 1000)])
    func softmaxMatchesReference(rows: Int, columns: Int) throws {
        var generator = SeededGenerator(seed: UInt64(rows * columns))
        let t = try Tensor.normal([rows, columns], standardDeviation: 10, generator: &generator)
        let s = try t.softmax()
        #expect(mismatch(s.scalars, Reference.softmax(t), atol: 1e-6, rtol: 1e-4) == nil)
        let logS = try t.logSoftmax()
        #expect(mismatch(logS.scalars, Reference.softmax(t).map { Foundation.log($0) }, atol: 1e-4, rtol: 1e-4) == nil)
    }

    @Test func argmaxTreatsNaNAsTheMaximumAndEmptyAxesAreErrors() throws {
        let t = try Tensor(rows: [[1, .nan, 3], [5, 2, 5]])
        #expect(try t.argmax(axis: 1) == [1, 0])
        #expect(throws: TensorError.self) { try Tensor.zeros([2, 0]).argmax(axis: 1) }
        #expect(try Tensor.zeros([0, 3]).argmax(axis: 1) == [])
        #expect(try Tensor.zeros([0, 3]).sum(axis: 0).scalars == [0, 0, 0])
        #expect(try Tensor.zeros([0, 4]).softmax().shape == [0, 4])
        #expect(try Tensor.zeros([0, 4]).logSoftmax().shape == [0, 4])
    }

    @Test func aliasedInPlaceOperands() throws {
        var a = try Tensor(rows: [[1, 2], [3, 4]])
        try a += a
        #expect(a.scalars == [2, 4, 6, 8])
        let b = a
        try a *= b
        #expect(a.scalars == [4, 16, 36, 64])
        #expect(b.scalars == [2, 4, 6, 8])
        // Broadcasting a [1, n] row and rank-3 left operands.
        let rank3 = try Tensor.ones([2, 3, 4])
        let row = try Tensor(shape: [1, 4], scalars: [1, 2, 3, 4])
        #expect(try (rank3 + row).scalars == Array(repeating: [2, 3, 4, 5], count: 6).flatMap { $0 })
    }

    @Test func elementwiseMatchesScalarLoops() throws {
        var generator = SeededGenerator(seed: 99)
        let a = try Tensor.normal([17, 31], generator: &generator)
        let b = try Tensor.uniform([17, 31], lower: 0.5, upper: 2, generator: &generator)
        let row = try Tensor.normal([31], generator: &generator)
        #expect((try a + b).scalars == zip(a.scalars, b.scalars).map { $0 + $1 })
        #expect((try a / b).scalars == zip(a.scalars, b.scalars).map { $0 / $1 })
        let broadcast = try a * row
        for r in 0..<17 { for c in 0..<31 { #expect(broadcast[r, c] == a[r, c] * row[c]) } }
        var inPlace = a
        try inPlace -= b
        #expect(inPlace == (try a - b))
        var axpy = b
        try axpy.axpy(-0.5, a)
        #expect(axpy.scalars == zip(a.scalars, b.scalars).map { $1 + -0.5 * $0 })
    }
}

import Foundation
