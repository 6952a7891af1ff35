import Foundation
import PhalanxNN
import PhalanxTensor
import Testing

/// Conv2d, MaxPool2d, AvgPool2d, LayerNorm, Embedding, SelfAttention and Residual against PyTorch (float64, `Tests/Golden/make_layers.py`):
/// output, input gradient and parameter gradients, with odd shapes, strides and paddings.
@Suite struct LayerGoldenTests {
    struct Case: Decodable, Sendable {
        let name: String
        let layer: String
        let input_shape: [Int]
        let out_channels: Int?
        let features: Int?
        let count: Int?
        let dimension: Int?
        let kernel: [Int]
        let stride: [Int]
        let padding: [Int]
        let bias: Bool?
        let input: [Double]
        let weight: [Double]?
        let bias_values: [Double]?
        let output_shape: [Int]
        let output: [Double]
        let output_gradient: [Double]
        let input_gradient: [Double]
        let weight_gradient: [Double]?
        let bias_gradient: [Double]?
        let heads: Int?
        let causal: Bool?
        /// Every parameter tensor in layout order (cases with more than a weight and a bias).
        let parameters: [[Double]]?
        let parameter_gradients: [[Double]]?
    }

    static let cases: [Case] = {
        struct File: Decodable { let cases: [Case] }
        guard let url = Bundle.module.url(forResource: "golden_layers", withExtension: "json"), let data = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode(File.self, from: data).cases) ?? []
    }()

    @Test func fixtureLoads() { #expect(Self.cases.count == 20) }

    /// TinyGPT's block: two residuals (attention, then the GELU MLP), each after a LayerNorm.
    static func transformerBlock(embed: Int, heads: Int) -> [any Layer] {
        [
            Residual([LayerNorm(embed), SelfAttention(embed: embed, heads: heads, causal: true)]),
            Residual([LayerNorm(embed), Linear(embed, 4 * embed), GELU(), Linear(4 * embed, embed)]),
        ]
    }

    /// Relative 1e-5 (float32 against float64), with an absolute floor for values near zero.
    static func expectClose(_ actual: [Float], _ expected: [Double], _ what: String) {
        #expect(actual.count == expected.count, "\(what): \(actual.count) values, PyTorch has \(expected.count)")
        let scale = expected.map(abs).max() ?? 1
        for (i, (a, e)) in zip(actual, expected).enumerated() where abs(Double(a) - e) > 1e-5 * abs(e) + 1e-6 * scale {
            Issue.record("\(what)[\(i)]: \(a), PyTorch \(e)")
            return
        }
    }

    @Test(arguments: cases.map(\.name))
    func matchesPyTorch(name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let kernel = Size2D(c.kernel[0], c.kernel[1]), stride = Size2D(c.stride[0], c.stride[1]), padding = Size2D(c.padding[0], c.padding[1])
        let layers: [any Layer] = switch c.layer {
        case "conv2d": [Conv2d(c.input_shape[1], c.out_channels ?? 0, kernel: kernel, stride: stride, padding: padding, bias: c.bias ?? true)]
        case "maxpool2d": [MaxPool2d(kernel: kernel, stride: stride, padding: padding)]
        case "layernorm": [LayerNorm(c.features ?? 0)]
        case "embedding": [Embedding(c.count ?? 0, c.dimension ?? 0)]
        case "attention": [SelfAttention(embed: c.input_shape[2], heads: c.heads ?? 1, causal: c.causal ?? false)]
        case "residual_mlp": [Residual([Linear(c.input_shape[1], c.input_shape[1]), ReLU(), Linear(c.input_shape[1], c.input_shape[1])])]
        case "linear": [Linear(c.input_shape.last ?? 0, c.features ?? 0)]
        case "positional": [PositionalEmbedding(maxLength: c.count ?? 0, dimension: c.input_shape[2])]
        case "transformer_block": Self.transformerBlock(embed: c.input_shape[2], heads: c.heads ?? 1)
        default: [AvgPool2d(kernel: kernel, stride: stride, padding: padding)]
        }
        let model = try Sequential(layers, seed: 1)
        let parameters = c.parameters?.flatMap { $0 } ?? ((c.weight ?? []) + (c.bias_values ?? []))
        #expect(model.parameterCount == parameters.count)
        for (i, value) in parameters.enumerated() { model.store.values.buffer[i] = Float(value) }
        let output = try model.forward(try Tensor(shape: c.input_shape, scalars: c.input.map(Float.init)))
        #expect(output.shape == c.output_shape)
        Self.expectClose(output.scalars, c.output, "\(name) output")
        let inputGradient = try #require(try model.backward(try Tensor(shape: c.output_shape, scalars: c.output_gradient.map(Float.init)), needsInputGradient: true))
        #expect(inputGradient.shape == c.input_shape)
        Self.expectClose(inputGradient.scalars, c.input_gradient, "\(name) input gradient")
        let gradients = Array(model.store.gradients.buffer)
        Self.expectClose(gradients, c.parameter_gradients?.flatMap { $0 } ?? ((c.weight_gradient ?? []) + (c.bias_gradient ?? [])), "\(name) parameter gradients")
    }

    @Test func accumulatingAddsToTheGradients() throws {
        let model = try Sequential([Conv2d(2, 3, kernel: 3, padding: 1)], seed: 5)
        let x = try Tensor(shape: [2, 2, 4, 5], scalars: (0..<80).map { Float($0 % 7) / 7 - 0.4 })
        let dy = try Tensor(shape: [2, 3, 4, 5], scalars: (0..<120).map { Float($0 % 5) / 5 - 0.3 })
        _ = try model.forward(x)
        _ = try model.backward(dy)
        let once = Array(model.store.gradients.buffer)
        _ = try model.forward(x)
        _ = try model.backward(dy, accumulate: true)
        let twice = Array(model.store.gradients.buffer)
        #expect(once.contains { $0 != 0 })
        let worst = zip(twice, once).map { abs($0 - 2 * $1) / (abs($1) + 1e-6) }.max() ?? 0
        #expect(worst <= 1e-5, "accumulated gradients differ from twice one pass by \(worst) (relative)")
    }

    @Test func wrongShapesAndWindowsAreClearErrors() throws {
        let conv = try Sequential([Conv2d(3, 4, kernel: 3)], seed: 1)
        #expect(throws: TensorError.self) { try conv.forward(try Tensor.zeros([2, 2, 5, 5])) }  // 2 channels, not 3
        #expect(throws: TensorError.self) { try conv.forward(try Tensor.zeros([2, 3, 5])) }  // not 4-D
        #expect(throws: TensorError.self) { try conv.forward(try Tensor.zeros([1, 3, 2, 2])) }  // a 3×3 window does not fit
        let pool = try Sequential([MaxPool2d(kernel: 2)], seed: 1)
        #expect(throws: TensorError.self) { try pool.forward(try Tensor.zeros([1, 1, 1, 4])) }
        let badPadding = try Sequential([AvgPool2d(kernel: 2, padding: 2)], seed: 1)
        #expect(throws: NNError.self) { try badPadding.forward(try Tensor.zeros([1, 1, 4, 4])) }
        #expect(throws: NNError.self) { try Conv2d(1, 1, kernel: 3).backward(try Tensor.zeros([1, 1, 1, 1]), options: BackwardOptions()) }
    }

    @Test func embeddingRefusesIdsOutsideTheTable() throws {
        let model = try Sequential([Embedding(5, 3)], seed: 2)
        #expect(throws: NNError.invalidIndex(position: 1, value: 5, count: 5)) { try model.forward(try Tensor(shape: [2], scalars: [4, 5])) }
        #expect(throws: NNError.invalidIndex(position: 0, value: 1.5, count: 5)) { try model.forward(try Tensor(shape: [1], scalars: [1.5])) }
        #expect(throws: NNError.invalidIndex(position: 0, value: -1, count: 5)) { try model.forward(try Tensor(shape: [1], scalars: [-1])) }
        let weights = try model.store.value(named: "layers.0.weight").scalars
        let std = (weights.map { Double($0 * $0) }.reduce(0, +) / Double(weights.count)).squareRoot()
        #expect(std > 0.4 && std < 1.8, "a standard normal start: \(std)")
    }

    @Test func layerNormRowsComeOutWithMeanZeroAndVarianceOne() throws {
        let model = try Sequential([LayerNorm(6)], seed: 3)
        let y = try model.forward(try Tensor(shape: [2, 6], scalars: [1, 2, 3, 4, 5, 6, -3, 0, 3, 100, 7, 1]))
        for row in 0..<2 {
            let values = y.scalars[(row * 6)..<(row * 6 + 6)].map(Double.init)
            let mean = values.reduce(0, +) / 6
            #expect(abs(mean) < 1e-5)
            #expect(abs(values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6 - 1) < 1e-3)
        }
        #expect(throws: TensorError.self) { try model.forward(try Tensor.zeros([2, 5])) }
    }

    @Test func flattenKeepsTheBatchAndGivesTheGradientItsShapeBack() throws {
        let model = try Sequential([Flatten()], seed: 0)
        let x = try Tensor(shape: [2, 3, 2, 2], scalars: (0..<24).map(Float.init))
        let y = try model.forward(x)
        #expect(y.shape == [2, 12] && y.scalars == x.scalars)
        #expect(try model.backward(y, needsInputGradient: true)?.shape == [2, 3, 2, 2])
    }
}
