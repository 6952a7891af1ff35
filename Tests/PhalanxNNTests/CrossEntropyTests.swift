import Foundation
import PhalanxNN
import PhalanxTensor
import Testing

@Suite struct CrossEntropyTests {
    struct Case: Decodable {
        struct Array: Decodable { let shape: [Int]; let data: [Double] }
        let name: String, op: String
        let inputs: [String: Array]
        let outputs: [String: Array]
    }

    /// The loss and gradient against NumPy's float64 values (`golden_loss.json`, written by
    /// `Tests/Golden/make_golden.py`), including logits around ±500.
    @Test func matchesNumPy() throws {
        struct File: Decodable { let cases: [Case] }
        let url = try #require(Bundle.module.url(forResource: "golden_loss", withExtension: "json"))
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
        #expect(cases.count >= 4)
        for c in cases {
            let logits = try #require(c.inputs["logits"]), labels = try #require(c.inputs["labels"])
            let result = try softmaxCrossEntropy(
                logits: try Tensor(shape: logits.shape, scalars: logits.data.map(Float.init)), labels: labels.data.map { Int($0) })
            let loss = try #require(c.outputs["loss"]?.data.first), grad = try #require(c.outputs["grad"])
            #expect(abs(Double(result.loss) - loss) <= 1e-5 + 1e-5 * abs(loss), "\(c.name) loss \(result.loss) vs \(loss)")
            #expect(result.gradient.shape == grad.shape)
            for (a, e) in zip(result.gradient.scalars, grad.data) {
                #expect(abs(Double(a) - e) <= 1e-6 + 1e-5 * abs(e), "\(c.name) gradient \(a) vs \(e)")
            }
        }
    }

    @Test func stableForHugeLogits() throws {
        let logits = try Tensor(rows: [[1000, -1000, 999], [-5000, -5001, -4999]])
        let result = try softmaxCrossEntropy(logits: logits, labels: [0, 2])
        #expect(result.loss.isFinite)
        #expect(result.gradient.scalars.allSatisfy { $0.isFinite })
        // Row 0: −log(e^0 / (1 + e^−1)) = log(1 + e^−1); row 1: log(1 + e^−1 + e^−2).
        let expected = (Foundation.log(1 + Foundation.exp(-1.0)) + Foundation.log(1 + Foundation.exp(-1.0) + Foundation.exp(-2.0))) / 2
        #expect(abs(Double(result.loss) - expected) < 1e-5)
    }

    @Test func normalizerSplitsTheGlobalMean() throws {
        // Two members each normalising by the global batch size sum to the global mean's gradient.
        var generator = SeededGenerator(seed: 5)
        let logits = try Tensor.normal([6, 4], generator: &generator)
        let labels = [0, 1, 2, 3, 0, 1]
        let whole = try softmaxCrossEntropy(logits: logits, labels: labels)
        let first = try softmaxCrossEntropy(logits: try logits.rows(0..<2), labels: Array(labels[0..<2]), normalizer: 6)
        let second = try softmaxCrossEntropy(logits: try logits.rows(2..<6), labels: Array(labels[2..<6]), normalizer: 6)
        #expect(abs(first.loss + second.loss - whole.loss) < 1e-6)
        let joined = first.gradient.scalars + second.gradient.scalars
        for (a, b) in zip(joined, whole.gradient.scalars) { #expect(abs(a - b) < 1e-7) }
    }

    @Test func badLabelsAreErrors() throws {
        let logits = try Tensor.zeros([2, 3])
        #expect(throws: NNError.invalidLabel(index: 1, label: 3, classes: 3)) { try softmaxCrossEntropy(logits: logits, labels: [0, 3]) }
        #expect(throws: NNError.invalidLabel(index: 0, label: -1, classes: 3)) { try softmaxCrossEntropy(logits: logits, labels: [-1, 0]) }
        #expect(throws: NNError.labelCountMismatch(batch: 2, labels: 1)) { try softmaxCrossEntropy(logits: logits, labels: [0]) }
        #expect(throws: NNError.self) { try softmaxCrossEntropy(logits: logits, labels: [0, 1], normalizer: 0) }
    }

    @Test func accuracyCountsArgmaxHits() throws {
        let logits = try Tensor(rows: [[0, 1], [3, 2], [5, 5]])
        #expect(try accuracy(logits: logits, labels: [1, 0, 0]) == 1)
        #expect(try accuracy(logits: logits, labels: [0, 0, 1]) == Float(1) / 3)
    }
}
