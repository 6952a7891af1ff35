import PhalanxNN
import PhalanxTensor
import Testing

/// Dropout: masks of the right rate and scale, the same mask forward and backward, and masks
/// that depend only on (seed, draw, global sample), so that members splitting a batch draw
/// what one process would.
@Suite struct DropoutTests {
    static func input(rows: Int, columns: Int) throws -> Tensor {
        try Tensor(shape: [rows, columns], scalars: (0..<(rows * columns)).map { 1 + Float($0 % 13) })
    }

    @Test func dropsTheRightFractionAndScalesTheRest() throws {
        let dropout = try Dropout(0.3, seed: 5)
        let x = try Self.input(rows: 200, columns: 500)
        let y = try dropout.forward(x)
        var zeros = 0
        for (a, b) in zip(x.scalars, y.scalars) {
            if b == 0 { zeros += 1 } else { #expect(abs(b - a / 0.7) <= 1e-5 * abs(b), "kept values are scaled by 1/(1-p)") }
        }
        // 100 000 draws: the fraction is within 5 standard deviations (0.0072) of 0.3.
        let fraction = Double(zeros) / Double(x.count)
        #expect(abs(fraction - 0.3) < 0.0072, "dropped \(fraction)")
    }

    @Test func backwardUsesTheForwardMask() throws {
        let dropout = try Dropout(0.5, seed: 1)
        let x = try Self.input(rows: 8, columns: 9)
        let y = try dropout.forward(x)
        let dy = try Tensor(shape: x.shape, scalars: [Float](repeating: 1, count: x.count))
        let dx = try #require(try dropout.backward(dy, options: BackwardOptions()))
        for (i, (out, grad)) in zip(y.scalars, dx.scalars).enumerated() {
            #expect((out == 0) == (grad == 0) && (grad == 0 || grad == 2), "element \(i): output \(out), gradient \(grad)")
        }
    }

    @Test func evaluationIsTheIdentityAndTrainingDrawsANewMaskEachTime() throws {
        let dropout = try Dropout(0.5, seed: 2)
        let x = try Self.input(rows: 4, columns: 16)
        let first = try dropout.forward(x), second = try dropout.forward(x)
        #expect(first.scalars != second.scalars, "each training forward advances the draw")
        #expect(dropout.draw == 2)
        dropout.training = false
        #expect(try dropout.forward(x).scalars == x.scalars)
        #expect(try dropout.backward(x, options: BackwardOptions())?.scalars == x.scalars)
        #expect(dropout.draw == 2, "evaluation draws nothing")
    }

    @Test func masksDependOnSeedDrawAndGlobalSampleOnly() throws {
        let x = try Self.input(rows: 6, columns: 10)
        let whole = try Dropout(0.4, seed: 7)
        whole.draw = 3
        let all = try whole.forward(x).scalars
        // Two members, each with half of the global batch, keyed by their first sample.
        var halves: [Float] = []
        for (first, rows) in [(0, 0..<3), (3, 3..<6)] {
            let member = try Dropout(0.4, seed: 7)
            member.draw = 3
            member.firstSample = first
            halves += try member.forward(try Tensor(shape: [3, 10], scalars: Array(x.scalars[(rows.lowerBound * 10)..<(rows.upperBound * 10)]))).scalars
        }
        #expect(halves == all)
        let otherSeed = try Dropout(0.4, seed: 8)
        otherSeed.draw = 3
        #expect(try otherSeed.forward(x).scalars != all)
    }

    @Test func aModelSwitchesEveryDropoutAndKeysItsStream() throws {
        let model = try Sequential([Linear(5, 5), try Dropout(0.5, seed: 1), Residual([Linear(5, 5), try Dropout(0.5, seed: 2)])], seed: 3)
        #expect(model.dropouts.map(\.name) == ["layers.1", "layers.2.1"])
        model.training = false
        #expect(model.dropouts.allSatisfy { !$0.layer.training } && !model.training)
        model.training = true
        model.setRandomStream(draw: 42, firstSample: 8)
        #expect(model.dropouts.allSatisfy { $0.layer.draw == 42 && $0.layer.firstSample == 8 })
    }

    @Test func impossibleProbabilitiesAreRefused() {
        for p: Float in [-0.1, 1, 1.5, .nan] {
            #expect(throws: NNError.self) { try Dropout(p) }
        }
    }
}
