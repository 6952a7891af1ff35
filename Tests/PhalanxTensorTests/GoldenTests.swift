import Foundation
import PhalanxTensor
import Testing

/// Every kernel against values computed independently with NumPy in float64
/// (`Tests/Golden/make_golden.py`). Tolerances (absolute + relative·|expected|): 1e-6 + 1e-6 for
/// exact or single-rounding ops (add, mul, relu, max, argmax, scale, axpy, …), 1e-4 + 1e-4 for
/// transcendental functions and sums of up to ~65 products (matmul, matvec, reductions, softmax).
@Suite struct GoldenTests {
    static let cases: [GoldenCase] = (try? GoldenCase.load(resource: "golden_tensor")) ?? []

    @Test func fixtureLoads() {
        #expect(Self.cases.count >= 150)
    }

    @Test(arguments: cases.map(\.name))
    func matchesNumPy(name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let outputs = try Self.evaluate(c)
        for (key, expected) in c.outputs {
            let actual = try #require(outputs[key], "no output \(key)")
            #expect(actual.shape == expected.shape, "\(name).\(key) shape")
            let tight = ["relu", "add", "sub", "mul", "div", "add_scalar", "mul_scalar", "scale", "axpy", "argmax", "max"]
            let (atol, rtol) = tight.contains(c.op) ? (1e-6, 1e-6) : (1e-4, 1e-4)
            if let message = mismatch(actual.scalars, expected.data, atol: atol, rtol: rtol) {
                Issue.record("\(name).\(key): \(message)")
            }
        }
    }

    static func evaluate(_ c: GoldenCase) throws -> [String: Tensor] {
        let a = try? c.input("a")
        func unary(_ f: (Tensor) throws -> Tensor) throws -> [String: Tensor] { ["out": try f(try #require(a))] }
        func axis() -> Int { Int(c.param("axis")) }
        switch c.op {
        case "matmul":
            return ["out": try c.input("a").matmul(
                try c.input("b"), transposeSelf: c.param("transA") != 0, transposeOther: c.param("transB") != 0)]
        case "matvec": return ["out": try c.input("a").matvec(try c.input("x"))]
        case "add": return ["out": try c.input("a") + c.input("b")]
        case "sub": return ["out": try c.input("a") - c.input("b")]
        case "mul": return ["out": try c.input("a") * c.input("b")]
        case "div": return ["out": try c.input("a") / c.input("b")]
        case "add_scalar": return try unary { $0 + Float(c.param("scalar")) }
        case "mul_scalar": return try unary { $0 * Float(c.param("scalar")) }
        case "relu": return try unary { $0.relu() }
        case "gelu": return try unary { $0.gelu() }
        case "tanh": return try unary { $0.tanh() }
        case "sigmoid": return try unary { $0.sigmoid() }
        case "exp": return try unary { $0.exp() }
        case "log": return try unary { $0.log() }
        case "sum": return try unary { try $0.sum(axis: axis()) }
        case "mean": return try unary { try $0.mean(axis: axis()) }
        case "max": return try unary { try $0.max(axis: axis()) }
        case "argmax":
            return try unary { t in
                let indices = try t.argmax(axis: axis())
                var shape = t.shape
                shape.remove(at: axis())
                return try Tensor(shape: shape, scalars: indices.map(Float.init))
            }
        case "softmax": return try unary { try $0.softmax() }
        case "log_softmax": return try unary { try $0.logSoftmax() }
        case "norm2": return try unary { Tensor(scalar: $0.norm()) }
        case "norm1": return try unary { Tensor(scalar: $0.normL1()) }
        case "normInf": return try unary { Tensor(scalar: $0.normInfinity()) }
        case "scale":
            return try unary { t in
                var copy = t
                copy.scale(by: Float(c.param("alpha")))
                return copy
            }
        case "axpy":
            var y = try c.input("y")
            try y.axpy(Float(c.param("alpha")), try c.input("x"))
            return ["out": y]
        case "cross_entropy":
            // Cross-entropy lives in PhalanxNN; here we check its tensor building blocks:
            // the loss from log-softmax and the gradient from softmax.
            let logits = try c.input("logits")
            let labels = try c.input("labels").scalars.map { Int($0) }
            let logProbabilities = try logits.logSoftmax()
            let classes = logits.shape[1]
            var loss = 0.0
            for (row, label) in labels.enumerated() { loss -= Double(logProbabilities.scalars[row * classes + label]) }
            var gradient = try logits.softmax()
            gradient.withUnsafeMutableBufferPointer { g in
                for (row, label) in labels.enumerated() { g[row * classes + label] -= 1 }
            }
            gradient /= Float(labels.count)
            return ["loss": Tensor(scalar: Float(loss / Double(labels.count))), "grad": gradient]
        default:
            throw TensorError.invalidShape([], reason: "unknown golden op \(c.op)")
        }
    }
}
