import PhalanxNN
import PhalanxTensor
import Testing

@Suite struct SequentialTests {
    @Test func parametersLiveInOneFlatBufferWithNames() throws {
        let model = try Sequential([Linear(4, 3), ReLU(), Linear(3, 2)], seed: 7)
        #expect(model.parameterCount == 4 * 3 + 3 + 3 * 2 + 2)
        #expect(model.store.layout.entries.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"])
        #expect(model.store.layout.entries.map(\.offset) == [0, 12, 15, 21])
        // The named view and the flat buffer are the same memory.
        try model.store.setValue(try Tensor.full([2, 3], 0.5), named: "layers.2.weight")
        #expect(model.store.values.buffer[15..<21].allSatisfy { $0 == 0.5 })
        #expect(throws: NNError.unknownName("layers.9.weight")) { try model.store.value(named: "layers.9.weight") }
        #expect(throws: TensorError.self) { try model.store.setValue(try Tensor.zeros([3, 2]), named: "layers.2.weight") }
    }

    @Test func sameSeedSameModel() throws {
        let a = try Sequential([Linear(5, 4), Linear(4, 3)], seed: 11)
        let b = try Sequential([Linear(5, 4), Linear(4, 3)], seed: 11)
        let c = try Sequential([Linear(5, 4), Linear(4, 3)], seed: 12)
        #expect(Array(a.store.values.buffer) == Array(b.store.values.buffer))
        #expect(Array(a.store.values.buffer) != Array(c.store.values.buffer))
        // Kaiming-uniform bound √(6/5) and zero biases.
        let w = try a.store.value(named: "layers.0.weight")
        #expect(w.scalars.allSatisfy { abs($0) <= (6.0 / 5).squareRoot() })
        #expect(try a.store.value(named: "layers.0.bias").scalars.allSatisfy { $0 == 0 })
    }

    @Test func linearForwardIsXWTransposePlusBias() throws {
        let model = try Sequential([Linear(2, 3)], seed: 1)
        try model.store.setValue(try Tensor(rows: [[1, 2], [3, 4], [5, 6]]), named: "layers.0.weight")
        try model.store.setValue(Tensor([0.5, -0.5, 1]), named: "layers.0.bias")
        let y = try model.forward(try Tensor(rows: [[1, 1], [2, 0]]))
        #expect(y == (try Tensor(rows: [[3.5, 6.5, 12], [2.5, 5.5, 11]])))
    }

    @Test func accumulateAddsGradients() throws {
        let model = try Sequential([Linear(3, 2)], seed: 2)
        let x = try Tensor.ones([4, 3]), dy = try Tensor.ones([4, 2])
        _ = try model.forward(x)
        try model.backward(dy)
        let once = Array(model.store.gradients.buffer)
        _ = try model.forward(x)
        try model.backward(dy, accumulate: true)
        #expect(Array(model.store.gradients.buffer) == once.map { 2 * $0 })
        _ = try model.forward(x)
        try model.backward(dy)
        #expect(Array(model.store.gradients.buffer) == once)
    }

    @Test func misuseIsAnError() throws {
        #expect(throws: NNError.notBound(layer: "Linear")) { try Linear(2, 2).forward(try Tensor.zeros([1, 2])) }
        let model = try Sequential([Linear(3, 2)], seed: 1)
        #expect(throws: NNError.noForward(layer: "Linear")) { try model.backward(try Tensor.zeros([1, 2])) }
        #expect(throws: TensorError.self) { try model.forward(try Tensor.zeros([1, 4])) }
        _ = try model.forward(try Tensor.zeros([2, 3]))
        #expect(throws: TensorError.self) { try model.backward(try Tensor.zeros([3, 2])) }
        #expect(throws: NNError.self) { try ReLU().backward(try Tensor.zeros([1]), options: BackwardOptions()) }
    }

    @Test func trainingReducesTheLoss() throws {
        // A linearly separable toy problem: the loss must fall well below its start.
        var generator = SeededGenerator(seed: 3)
        let x = try Tensor.normal([64, 2], generator: &generator)
        let labels = (0..<64).map { x[$0, 0] + x[$0, 1] > 0 ? 1 : 0 }
        let model = try Sequential([Linear(2, 8), Tanh(), Linear(8, 2)], seed: 4)
        let optimizer = try SGD(layout: model.store.layout, learningRate: 0.5, momentum: 0.9)
        var first: Float = 0, last: Float = 0
        for step in 0..<100 {
            let result = try softmaxCrossEntropy(logits: try model.forward(x), labels: labels)
            try model.backward(result.gradient)
            try optimizer.step(model.store)
            if step == 0 { first = result.loss }
            last = result.loss
        }
        #expect(last < first * 0.2)
        #expect(try accuracy(logits: try model.forward(x), labels: labels) > 0.95)
    }
}
