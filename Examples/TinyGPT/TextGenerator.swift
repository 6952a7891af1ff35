import Foundation
import Phalanx

/// Generates text from a trained character model: each next character is drawn from the
/// softmax of the model's last logits at `temperature` (seeded, so a run is reproducible).
struct TextGenerator: Sendable {
    let corpus: CharacterCorpus
    let context: Int
    let temperature: Float
    let seed: UInt64

    /// `prompt` followed by `length` generated characters (the model in evaluation mode).
    /// - Throws: `DataError` for a prompt character outside the vocabulary, or a layer error.
    func continuation(of prompt: String, length: Int, model: Sequential) throws -> String {
        var ids = try corpus.encode(prompt)
        if ids.isEmpty { ids = [0] }
        var random = SeededGenerator(seed: seed)
        let wasTraining = model.training
        model.training = false
        defer { model.training = wasTraining }
        for _ in 0..<length {
            let window = Array(ids.suffix(context))
            let logits = try model.forward(try Tensor(shape: [1, window.count], scalars: window.map(Float.init)))
            let classes = corpus.vocabulary.count
            ids.append(try pick(Array(logits.scalars.suffix(classes)), using: &random))
        }
        return corpus.decode(ids)
    }

    /// A model whose logits are not finite (it diverged) has nothing to sample from.
    struct NonFiniteLogits: Error, CustomStringConvertible {
        var description: String { "the model's logits are not finite (training diverged): no sample" }
    }

    /// A draw from softmax(logits / temperature), or the arg-max at temperature 0.
    /// - Throws: `NonFiniteLogits` when a logit is NaN or infinite.
    private func pick(_ logits: [Float], using random: inout SeededGenerator) throws -> Int {
        guard logits.allSatisfy(\.isFinite) else { throw NonFiniteLogits() }
        guard temperature > 0 else { return logits.indices.max { logits[$0] < logits[$1] } ?? 0 }
        let top = logits.max() ?? 0
        let weights = logits.map { exp(Double(($0 - top) / temperature)) }
        var target = Double.random(in: 0..<weights.reduce(0, +), using: &random)
        for (id, weight) in weights.enumerated() {
            target -= weight
            if target < 0 { return id }
        }
        return weights.count - 1
    }
}
