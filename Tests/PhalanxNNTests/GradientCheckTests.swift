import PhalanxNN
import PhalanxTensor
import Testing

/// Finite-difference checks of every layer's and the loss's backward pass.
///
/// The scalar checked is `L = Σ forward(x) ⊙ R` for a fixed random `R`, so ∂L/∂output = R.
/// Central differences with h = 1e-2 in Float; smooth layers agree to O(h²); inputs of ReLU are
/// kept at least 0.1 away from its kink. Tolerance: 2e-3 absolute + 2e-3 relative.
@Suite struct GradientCheckTests {
    static let h: Float = 1e-2
    static let tolerance: Float = 2e-3

    static func check(_ model: Sequential, input: Tensor, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let probe = try Tensor.normal(try model.forward(input).shape, generator: &generator)
        func loss(_ x: Tensor) throws -> Float { (try model.forward(x) * probe).sum() }

        _ = try model.forward(input)
        let inputGradient = try #require(try model.backward(probe, needsInputGradient: true))
        let analytic = model.store.gradients.buffer.map { $0 }

        // Parameters.
        let values = model.store.values.baseAddress
        for i in 0..<model.store.count {
            let saved = values[i]
            values[i] = saved + h
            let plus = try loss(input)
            values[i] = saved - h
            let minus = try loss(input)
            values[i] = saved
            let numeric = (plus - minus) / (2 * h)
            #expect(abs(numeric - analytic[i]) <= tolerance * (1 + abs(numeric)), "parameter \(i): \(numeric) vs \(analytic[i])")
        }
        // Inputs.
        for i in 0..<input.count {
            var plus = input, minus = input
            plus.withUnsafeMutableBufferPointer { $0[i] += h }
            minus.withUnsafeMutableBufferPointer { $0[i] -= h }
            let numeric = (try loss(plus) - loss(minus)) / (2 * h)
            #expect(abs(numeric - inputGradient.scalars[i]) <= tolerance * (1 + abs(numeric)), "input \(i): \(numeric) vs \(inputGradient.scalars[i])")
        }
    }

    static func input(_ shape: [Int], seed: UInt64, awayFromZero: Bool = false) throws -> Tensor {
        var generator = SeededGenerator(seed: seed)
        var x = try Tensor.normal(shape, generator: &generator)
        if awayFromZero { x.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] += b[i] >= 0 ? 0.1 : -0.1 } } }
        return x
    }

    @Test(arguments: [(1, 1, 1), (3, 5, 2), (4, 7, 3)])
    func linear(batch: Int, inputs: Int, outputs: Int) throws {
        let model = try Sequential([Linear(inputs, outputs)], seed: 1)
        try Self.check(model, input: try Self.input([batch, inputs], seed: 2), seed: 3)
    }

    @Test func linearWithoutBias() throws {
        let model = try Sequential([Linear(5, 3, bias: false)], seed: 4)
        #expect(model.parameterCount == 15)
        try Self.check(model, input: try Self.input([2, 5], seed: 5), seed: 6)
    }

    @Test func relu() throws {
        try Self.check(try Sequential([ReLU()], seed: 0), input: try Self.input([3, 7], seed: 7, awayFromZero: true), seed: 8)
    }

    @Test func gelu() throws {
        try Self.check(try Sequential([GELU()], seed: 0), input: try Self.input([3, 7], seed: 9), seed: 10)
    }

    @Test func tanh() throws {
        try Self.check(try Sequential([Tanh()], seed: 0), input: try Self.input([3, 7], seed: 11), seed: 12)
    }

    @Test func deepStack() throws {
        let model = try Sequential([Linear(6, 8), GELU(), Linear(8, 5), Tanh(), Linear(5, 3)], seed: 13)
        try Self.check(model, input: try Self.input([4, 6], seed: 14), seed: 15)
    }

    @Test(arguments: [(1, 1), (1, 10), (5, 4), (7, 13)])
    func crossEntropy(batch: Int, classes: Int) throws {
        var generator = SeededGenerator(seed: UInt64(batch * 100 + classes))
        let logits = try Tensor.normal([batch, classes], standardDeviation: 2, generator: &generator)
        let labels = (0..<batch).map { ($0 * 7 + 3) % classes }
        let result = try softmaxCrossEntropy(logits: logits, labels: labels)
        for i in 0..<logits.count {
            var plus = logits, minus = logits
            plus.withUnsafeMutableBufferPointer { $0[i] += Self.h }
            minus.withUnsafeMutableBufferPointer { $0[i] -= Self.h }
            let numeric = (try softmaxCrossEntropy(logits: plus, labels: labels).loss
                - softmaxCrossEntropy(logits: minus, labels: labels).loss) / (2 * Self.h)
            #expect(abs(numeric - result.gradient.scalars[i]) <= Self.tolerance * (1 + abs(numeric)))
        }
    }
}
