import Foundation
import PhalanxTensor
import Testing

/// Activations, norms and matvec against Double-precision reference formulas on odd shapes.
@Suite struct ActivationReferenceTests {
    static let shapes: [[Int]] = [[1, 1], [1, 13], [13, 1], [7, 31], [0, 5], [3, 2, 5]]

    static func reference(_ name: String, _ x: Double) -> Double {
        switch name {
        case "relu": return max(x, 0)
        case "gelu": return 0.5 * x * erfc(-x / 2.0.squareRoot())
        case "tanh": return Foundation.tanh(x)
        case "sigmoid": return 1 / (1 + Foundation.exp(-x))
        case "exp": return Foundation.exp(x)
        default: return Foundation.log(x)
        }
    }

    @Test(arguments: ["relu", "gelu", "tanh", "sigmoid", "exp", "log"], shapes)
    func activationMatchesReference(name: String, shape: [Int]) throws {
        var generator = SeededGenerator(seed: UInt64(shape.reduce(3, *)))
        var x = try Tensor.normal(shape, standardDeviation: 4, generator: &generator)
        if name == "log" { x = x.abs() + 0.5 }
        let y: Tensor
        switch name {
        case "relu": y = x.relu()
        case "gelu": y = x.gelu()
        case "tanh": y = x.tanh()
        case "sigmoid": y = x.sigmoid()
        case "exp": y = x.exp()
        default: y = x.log()
        }
        #expect(y.shape == shape)
        let expected = x.scalars.map { Self.reference(name, Double($0)) }
        #expect(mismatch(y.scalars, expected, atol: 1e-6, rtol: 2e-6) == nil, "\(name) \(shape)")

        // The in-place forms agree with the out-of-place ones.
        var inPlace = x
        switch name {
        case "relu": inPlace.formReLU()
        case "gelu": inPlace.formGELU()
        case "tanh": inPlace.formTanh()
        case "sigmoid": inPlace.formSigmoid()
        default: return  // exp and log have no in-place form
        }
        #expect(inPlace == y)
    }

    @Test(arguments: shapes)
    func normsMatchReference(shape: [Int]) throws {
        var generator = SeededGenerator(seed: UInt64(shape.reduce(5, *)))
        let x = try Tensor.normal(shape, generator: &generator)
        let values = x.scalars.map(Double.init)
        #expect(abs(Double(x.norm()) - values.map { $0 * $0 }.reduce(0, +).squareRoot()) < 1e-5)
        #expect(abs(Double(x.normL1()) - values.map(abs).reduce(0, +)) < 1e-4)
        #expect(Double(x.normInfinity()) == (values.map(abs).max() ?? 0))
        #expect(abs(Double(try x.dot(x)) - values.map { $0 * $0 }.reduce(0, +)) < 1e-4)
    }

    @Test(arguments: [(1, 1), (5, 1), (1, 5), (17, 13), (3, 0), (0, 3)])
    func matvecMatchesReference(rows: Int, columns: Int) throws {
        var generator = SeededGenerator(seed: UInt64(rows * 31 + columns))
        let a = try Tensor.normal([rows, columns], generator: &generator)
        let x = try Tensor.normal([columns], generator: &generator)
        let y = try a.matvec(x)
        #expect(y.shape == [rows])
        let expected = Reference.matmul(a, try x.reshaped([columns, 1]), false, false)
        #expect(mismatch(y.scalars, expected, atol: 1e-5, rtol: 1e-5) == nil)
    }

    /// The call-free exponential (softmax, GELU) against Double `exp`: within 2 ulp-ish (3e-7
    /// relative) over the range it serves, exactly 0 for −∞ and below −87.3, NaN for NaN.
    @Test func fastExpMatchesExpOverItsRange() {
        var worst = 0.0
        for i in 0...200_000 {
            let x = Float(-87.3 + Double(i) * (88.0 + 87.3) / 200_000)
            let reference = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(Activations.fastExp(x)) - reference) / reference)
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(Activations.fastExp(-.infinity) == 0 && Activations.fastExp(-100) == 0)
        #expect(Activations.fastExp(0) == 1)
        #expect(Activations.fastExp(.nan).isNaN)
    }

    /// GELU's normal CDF (Abramowitz & Stegun 7.1.26) against Double `erfc`, absolute.
    @Test func normalCDFIsWithinTwoTenthsOfAMillionth() {
        var worst = 0.0
        for i in 0...40_000 {
            let x = Float(-10 + Double(i) * 20 / 40_000)
            let reference = 0.5 * erfc(-Double(x) / 2.0.squareRoot())
            worst = max(worst, abs(Double(Activations.normalCDF(x).cdf) - reference))
        }
        #expect(worst < 2.5e-7, "worst absolute error \(worst)")
    }
}
