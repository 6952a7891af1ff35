import CBLAS
import Phalanx

/// The GEMMs of one MLP training step and nothing else, into buffers allocated once: forward
/// `Y = X·Wᵀ` per layer, backward `dW = dYᵀ·X` per layer and `dX = dY·W` for all but the first.
/// This is the floor that a framework's step time is compared against.
final class GemmOnlyStep {
    private let batch: Int
    private let sizes: [Int]
    private let weights: [UnsafeMutablePointer<Float>]
    private var activations: [[Float]]
    private var activationGradients: [[Float]]
    private var weightGradients: [[Float]]
    private let model: Sequential

    init(batch: Int, sizes: [Int], weights model: Sequential) throws {
        self.batch = batch
        self.sizes = sizes
        self.model = model
        let layout = model.store.layout
        weights = try (0..<(sizes.count - 1)).map { i in
            guard let entry = layout.entry(named: "layers.\(2 * i).weight") else { throw NNError.unknownName("layers.\(2 * i).weight") }
            return model.store.values.baseAddress + entry.offset
        }
        activations = sizes.map { [Float](repeating: 0.5, count: batch * $0) }
        activationGradients = sizes.map { [Float](repeating: 0.1, count: batch * $0) }
        weightGradients = (0..<(sizes.count - 1)).map { [Float](repeating: 0, count: sizes[$0] * sizes[$0 + 1]) }
    }

    func run() {
        let layers = sizes.count - 1
        for i in 0..<layers {
            let input = sizes[i], output = sizes[i + 1]
            activations[i].withUnsafeBufferPointer { x in
                activations[i + 1].withUnsafeMutableBufferPointer { y in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(batch), Int32(output), Int32(input), 1,
                                x.baseAddress, Int32(input), weights[i], Int32(input), 0, y.baseAddress, Int32(output))
                }
            }
        }
        for i in stride(from: layers - 1, through: 0, by: -1) {
            let input = sizes[i], output = sizes[i + 1]
            activationGradients[i + 1].withUnsafeBufferPointer { dy in
                activations[i].withUnsafeBufferPointer { x in
                    weightGradients[i].withUnsafeMutableBufferPointer { dw in
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(output), Int32(input), Int32(batch), 1,
                                    dy.baseAddress, Int32(output), x.baseAddress, Int32(input), 0, dw.baseAddress, Int32(input))
                    }
                }
                if i > 0 {
                    activationGradients[i].withUnsafeMutableBufferPointer { dx in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(batch), Int32(input), Int32(output), 1,
                                    dy.baseAddress, Int32(output), weights[i], Int32(input), 0, dx.baseAddress, Int32(input))
                    }
                }
            }
        }
    }
}
