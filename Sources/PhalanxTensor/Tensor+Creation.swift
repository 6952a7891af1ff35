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
        // Count in Double, then drop any value the Float arithmetic pushes onto or past `end`.
        let estimate = ((Double(end) - Double(start)) / Double(step)).rounded(.up)
        guard estimate < Double(Int32.max) else {
            throw TensorError.invalidShape([], reason: "arange(\(start), \(end), step: \(step)) would hold \(estimate) elements")
        }
        var values = (0..<Swift.max(0, Int(estimate))).map { start + Float($0) * step }
        while let last = values.last, step > 0 ? last >= end : last <= end { values.removeLast() }
        return Tensor(values)
    }

    /// Samples from a normal distribution with the given mean and standard deviation.
    /// - Throws: `TensorError.invalidShape` for a negative extent.
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
    /// - Throws: `TensorError.invalidShape` for a negative extent.
    public static func uniform(
        _ shape: [Int], lower: Float = 0, upper: Float = 1, generator: inout SeededGenerator
    ) throws -> Tensor {
        try validate(shape: shape)
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        let width = upper - lower
        for i in 0..<n {
            let v = lower + width * generator.nextUnitFloat()
            // Rounding can land on `upper`; keep the interval half-open.
            values[i] = v < upper ? v : lower
        }
        return Tensor(uncheckedShape: shape, scalars: values)
    }
}
