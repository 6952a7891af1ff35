extension Tensor {
    /// A tensor of `shape` filled with `value`.
    /// - Throws: `TensorError.invalidShape` for a negative extent.
    public static func full(_ shape: [Int], _ value: Float) throws -> Tensor {
        try validate(shape: shape)
        return Tensor(uncheckedShape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// A tensor of `shape` filled with zeros.
    public static func zeros(_ shape: [Int]) throws -> Tensor { try full(shape, 0) }

    /// A tensor of `shape` filled with ones.
    public static func ones(_ shape: [Int]) throws -> Tensor { try full(shape, 1) }

    /// The 1-D tensor `[start, start + step, …]` of every value below `end` (for positive `step`)
    /// or above it (negative `step`).
    /// - Throws: `TensorError.invalidShape` when `step` is zero or not finite.
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, end.isFinite else {
            throw TensorError.invalidShape([], reason: "arange needs a finite non-zero step")
        }
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return Tensor((0..<n).map { start + Float($0) * step })
    }

    /// Samples from a normal distribution with the given mean and standard deviation.
    public static func normal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, generator: inout SeededGenerator
    ) throws -> Tensor {
        try validate(shape: shape)
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = mean + standardDeviation * generator.nextNormal() }
        return Tensor(uncheckedShape: shape, scalars: values)
    }

    /// Samples uniformly from `[lower, upper)`.
    public static func uniform(
        _ shape: [Int], lower: Float = 0, upper: Float = 1, generator: inout SeededGenerator
    ) throws -> Tensor {
        try validate(shape: shape)
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        let width = upper - lower
        for i in 0..<n { values[i] = lower + width * generator.nextUnitFloat() }
        return Tensor(uncheckedShape: shape, scalars: values)
    }
}
