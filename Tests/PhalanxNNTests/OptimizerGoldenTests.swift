import Foundation
import PhalanxNN
import PhalanxTensor
import Testing

/// SGD, Adam and AdamW trajectories against NumPy float64 re-implementations of
/// `torch.optim`'s update rules (`golden_optim.json`); five steps of seven parameters.
@Suite struct OptimizerGoldenTests {
    struct Case: Decodable, Sendable {
        let name: String
        let optimizer: String
        let hyper: [String: Double]
        let initial: [Double]
        let gradients: [[Double]]
        let trajectory: [[Double]]
    }

    static let cases: [Case] = {
        struct File: Decodable { let cases: [Case] }
        guard let url = Bundle.module.url(forResource: "golden_optim", withExtension: "json"),
            let data = try? Data(contentsOf: url)
        else { return [] }
        return (try? JSONDecoder().decode(File.self, from: data).cases) ?? []
    }()

    @Test func fixtureLoads() { #expect(Self.cases.count == 8) }

    @Test(arguments: cases.map(\.name))
    func trajectoryMatches(name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        var layout = ParameterLayout()
        try layout.append(name: "layers.0.weight", shape: [c.initial.count])
        let h = { (key: String) in Float(c.hyper[key] ?? 0) }
        let optimizer: any Optimizer
        switch c.optimizer {
        case "sgd":
            optimizer = try SGD(
                layout: layout, learningRate: h("lr"), momentum: h("momentum"), dampening: h("dampening"),
                nesterov: h("nesterov") != 0, weightDecay: h("weightDecay"))
        case "adam":
            optimizer = try Adam(layout: layout, learningRate: h("lr"), beta1: h("beta1"), beta2: h("beta2"), epsilon: h("eps"), weightDecay: h("weightDecay"))
        case "adamw":
            optimizer = try AdamW(layout: layout, learningRate: h("lr"), beta1: h("beta1"), beta2: h("beta2"), epsilon: h("eps"), weightDecay: h("weightDecay"))
        default:
            Issue.record("unknown optimizer \(c.optimizer)")
            return
        }
        var parameters = c.initial.map(Float.init)
        for (step, gradient) in c.gradients.enumerated() {
            let g = gradient.map(Float.init)
            try parameters.withUnsafeMutableBufferPointer { p in
                try g.withUnsafeBufferPointer { try optimizer.step(parameters: p, gradients: $0) }
            }
            for (i, (a, e)) in zip(parameters, c.trajectory[step]).enumerated() {
                #expect(abs(Double(a) - e) <= 1e-5 + 1e-5 * abs(e), "\(name) step \(step + 1) parameter \(i): \(a) vs \(e)")
            }
        }
        #expect(optimizer.stepCount == c.gradients.count)
    }

    @Test func stateIsFlatAndNamed() throws {
        let model = try Sequential([Linear(3, 2), ReLU(), Linear(2, 1)], seed: 1)
        let adam = try Adam(layout: model.store.layout)
        #expect(adam.state.count == 2 * model.parameterCount)
        #expect(adam.stateLayout.entries.map(\.name) == [
            "optimizer.adam.m.layers.0.weight", "optimizer.adam.m.layers.0.bias",
            "optimizer.adam.m.layers.2.weight", "optimizer.adam.m.layers.2.bias",
            "optimizer.adam.v.layers.0.weight", "optimizer.adam.v.layers.0.bias",
            "optimizer.adam.v.layers.2.weight", "optimizer.adam.v.layers.2.bias",
        ])
        let sgd = try SGD(layout: model.store.layout, learningRate: 0.1, momentum: 0.9)
        #expect(sgd.stateLayout.entry(named: "optimizer.sgd.momentum.layers.2.bias")?.shape == [1])
        #expect(try SGD(layout: model.store.layout, learningRate: 0.1).state.count == 0)
    }

    @Test func wrongSizesAndHyperparametersAreErrors() throws {
        var layout = ParameterLayout()
        try layout.append(name: "w", shape: [4])
        let sgd = try SGD(layout: layout, learningRate: 0.1)
        var p: [Float] = [1, 2, 3], g: [Float] = [1, 2, 3]
        #expect(throws: NNError.sizeMismatch(what: "optimizer parameters", expected: 4, got: 3)) {
            try p.withUnsafeMutableBufferPointer { pp in try g.withUnsafeMutableBufferPointer { try sgd.step(parameters: pp, gradients: UnsafeBufferPointer($0)) } }
        }
        #expect(throws: NNError.self) { try SGD(layout: layout, learningRate: -1) }
        #expect(throws: NNError.self) { try SGD(layout: layout, learningRate: 0.1, nesterov: true) }
        #expect(throws: NNError.self) { try Adam(layout: layout, beta1: 1) }
        #expect(throws: NNError.self) { try Adam(layout: layout, epsilon: -1) }
        #expect(throws: NNError.self) { try layout.append(name: "w", shape: [1]) }
    }
}
