import PhalanxTensor

/// Where a 2-D window (convolution or pooling) goes over an input of `channels` planes of
/// `height` × `width`: the output size, and im2col/col2im, which turn a convolution into one GEMM
/// (Caffe's and PyTorch's CPU approach).
struct ConvGeometry: Equatable {
    let channels: Int
    let height: Int
    let width: Int
    let kernel: Size2D
    let stride: Size2D
    let padding: Size2D
    let outputHeight: Int
    let outputWidth: Int

    /// The geometry of `kernel` with `stride` and `padding` over `[channels, height, width]`.
    /// - Throws: `TensorError.shapeMismatch` when the window does not fit even once.
    init(channels: Int, height: Int, width: Int, kernel: Size2D, stride: Size2D, padding: Size2D, layer: String) throws {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        outputHeight = (height + 2 * padding.height - kernel.height) / stride.height + 1
        outputWidth = (width + 2 * padding.width - kernel.width) / stride.width + 1
        guard height + 2 * padding.height >= kernel.height, width + 2 * padding.width >= kernel.width, outputHeight >= 1, outputWidth >= 1 else {
            throw TensorError.shapeMismatch(operation: "\(layer): a \(kernel) window with padding \(padding) does not fit", lhs: [channels, height, width], rhs: [kernel.height, kernel.width])
        }
    }

    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    var patchSize: Int { channels * kernel.height * kernel.width }
    /// Columns of the column matrix: one per output position.
    var positions: Int { outputHeight * outputWidth }
    /// Elements of one input sample.
    var inputSize: Int { channels * height * width }

    /// The input row of output row `oy` under kernel row `ki` (may be outside: padding).
    @inline(__always) func inputRow(_ oy: Int, _ ki: Int) -> Int { oy * stride.height - padding.height + ki }
    /// The input column of output column `ox` under kernel column `kj`.
    @inline(__always) func inputColumn(_ ox: Int, _ kj: Int) -> Int { ox * stride.width - padding.width + kj }

    /// Fills `columns` (`patchSize` × `positions`, row-major) from one sample `x`; padding reads 0.
    func im2col(_ x: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            for ki in 0..<kernel.height {
                for kj in 0..<kernel.width {
                    let row = columns + ((c * kernel.height + ki) * kernel.width + kj) * positions
                    for oy in 0..<outputHeight {
                        let iy = inputRow(oy, ki)
                        let out = row + oy * outputWidth
                        guard iy >= 0, iy < height else {
                            out.update(repeating: 0, count: outputWidth)
                            continue
                        }
                        let line = x + (c * height + iy) * width
                        for ox in 0..<outputWidth {
                            let ix = inputColumn(ox, kj)
                            out[ox] = ix >= 0 && ix < width ? line[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Adds `columns` back into one sample's input gradient `dx` (zeroed first): the adjoint of
    /// `im2col`.
    func col2im(_ columns: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        dx.update(repeating: 0, count: inputSize)
        for c in 0..<channels {
            for ki in 0..<kernel.height {
                for kj in 0..<kernel.width {
                    let row = columns + ((c * kernel.height + ki) * kernel.width + kj) * positions
                    for oy in 0..<outputHeight {
                        let iy = inputRow(oy, ki)
                        guard iy >= 0, iy < height else { continue }
                        let line = dx + (c * height + iy) * width
                        let source = row + oy * outputWidth
                        for ox in 0..<outputWidth {
                            let ix = inputColumn(ox, kj)
                            if ix >= 0 && ix < width { line[ix] += source[ox] }
                        }
                    }
                }
            }
        }
    }
}
