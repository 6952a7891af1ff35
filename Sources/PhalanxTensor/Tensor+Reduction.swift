extension Tensor {
    /// Splits the shape around `axis` into (outer, axis extent, inner) element counts.
    func axisGeometry(_ axis: Int, operation: String) throws -> (outer: Int, length: Int, inner: Int, shape: [Int]) {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < rank else { throw TensorError.invalidAxis(axis, shape: shape) }
        let outer = shape[..<resolved].reduce(1, *)
        let inner = shape[(resolved + 1)...].reduce(1, *)
        var reducedShape = shape
        reducedShape.remove(at: resolved)
        return (outer, shape[resolved], inner, reducedShape)
    }

    func reduce(
        axis: Int, operation: String, allowEmpty: Bool,
        _ body: (_ base: UnsafePointer<Float>, _ length: Int, _ stride: Int) -> Float
    ) throws -> Tensor {
        let g = try axisGeometry(axis, operation: operation)
        if g.length == 0 && !allowEmpty && g.outer * g.inner > 0 {
            throw TensorError.invalidShape(shape, reason: "\(operation) over an empty axis \(axis)")
        }
        return withUnsafeBufferPointer { src in
            Tensor(uncheckedShape: g.shape) { dst in
                guard let d = dst.baseAddress else { return }
                guard let s = src.baseAddress else {
                    d.update(repeating: 0, count: dst.count)
                    return
                }
                for o in 0..<g.outer {
                    for i in 0..<g.inner {
                        d[o * g.inner + i] = body(s + o * g.length * g.inner + i, g.length, g.inner)
                    }
                }
            }
        }
    }

    /// Sums over `axis` (negative counts from the end); the axis is removed from the shape.
    /// - Throws: `TensorError.invalidAxis`.
    public func sum(axis: Int) throws -> Tensor {
        try reduce(axis: axis, operation: "sum", allowEmpty: true) { base, length, stride in
            var total = 0.0
            for j in 0..<length { total += Double(base[j * stride]) }
            return Float(total)
        }
    }

    /// Means over `axis`; the axis is removed from the shape.
    /// - Throws: `TensorError.invalidAxis`, or `.invalidShape` for an empty axis.
    public func mean(axis: Int) throws -> Tensor {
        try reduce(axis: axis, operation: "mean", allowEmpty: false) { base, length, stride in
            var total = 0.0
            for j in 0..<length { total += Double(base[j * stride]) }
            return Float(total / Double(length))
        }
    }

    /// Maxima over `axis`; the axis is removed from the shape.
    /// - Throws: `TensorError.invalidAxis`, or `.invalidShape` for an empty axis.
    public func max(axis: Int) throws -> Tensor {
        try reduce(axis: axis, operation: "max", allowEmpty: false) { base, length, stride in
            var best = -Float.infinity
            for j in 0..<length { best = Swift.max(best, base[j * stride]) }
            return best
        }
    }

    /// Indices of the first maximum over `axis`, as integers (a NaN counts as the maximum, as in
    /// PyTorch). The result has the shape of `self` without `axis`, flattened.
    /// - Throws: `TensorError.invalidAxis`, or `.invalidShape` for an empty axis.
    public func argmax(axis: Int) throws -> [Int] {
        let g = try axisGeometry(axis, operation: "argmax")
        if g.length == 0 && g.outer * g.inner > 0 {
            throw TensorError.invalidShape(shape, reason: "argmax over an empty axis \(axis)")
        }
        var result = [Int](repeating: 0, count: g.outer * g.inner)
        withUnsafeBufferPointer { src in
            guard let s = src.baseAddress else { return }
            for o in 0..<g.outer {
                for i in 0..<g.inner {
                    let base = s + o * g.length * g.inner + i
                    var best = base[0], index = 0
                    for j in 1..<Swift.max(g.length, 1) where !best.isNaN {
                        let v = base[j * g.inner]
                        if v > best || v.isNaN { best = v; index = j }
                    }
                    result[o * g.inner + i] = index
                }
            }
        }
        return result
    }

    /// The sum of all elements (accumulated in `Double`).
    public func sum() -> Float {
        withUnsafeBufferPointer { b in b.baseAddress.map { Float(Kernels.sum($0, count: b.count)) } ?? 0 }
    }

    /// The mean of all elements (NaN for an empty tensor).
    public func mean() -> Float { count == 0 ? .nan : sum() / Float(count) }

    /// The largest element (`-inf` for an empty tensor).
    public func max() -> Float { scalars.max() ?? -.infinity }
}
