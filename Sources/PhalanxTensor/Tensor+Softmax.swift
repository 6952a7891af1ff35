extension Tensor {
    /// Softmax over the last axis, stable for large inputs (the row maximum is subtracted).
    /// - Throws: `TensorError.rankMismatch` for a scalar.
    public func softmax() throws -> Tensor {
        try rowwise(operation: "softmax") { Kernels.softmaxRows($0, $1, rows: $2, columns: $3) }
    }

    /// Log-softmax over the last axis, computed as `x - max - log Σ exp(x - max)`.
    /// - Throws: `TensorError.rankMismatch` for a scalar.
    public func logSoftmax() throws -> Tensor {
        try rowwise(operation: "logSoftmax") { Kernels.logSoftmaxRows($0, $1, rows: $2, columns: $3) }
    }

    private func rowwise(
        operation: String,
        _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void
    ) throws -> Tensor {
        guard let columns = shape.last else {
            throw TensorError.rankMismatch(operation: operation, expected: 1, shape: shape)
        }
        let rows = columns == 0 ? 0 : count / columns
        return withUnsafeBufferPointer { src in
            Tensor(uncheckedShape: shape) { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                kernel(s, d, rows, columns)
            }
        }
    }
}
