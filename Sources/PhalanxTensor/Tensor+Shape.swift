extension Tensor {
    /// The same elements under a new shape; one extent may be `-1` and is then inferred.
    /// - Throws: `TensorError.invalidShape` if the element counts differ.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.map(\.element)
            try Tensor.validate(shape: known)
            let product = known.reduce(1, *)
            guard product > 0, count % product == 0 else {
                throw TensorError.invalidShape(newShape, reason: "cannot infer -1 for \(count) elements (from \(shape))")
            }
            resolved[hole] = count / product
        }
        try Tensor.validate(shape: resolved)
        guard resolved.reduce(1, *) == count else {
            throw TensorError.invalidShape(newShape, reason: "holds \(resolved.reduce(1, *)) elements, \(shape) holds \(count)")
        }
        return Tensor(uncheckedShape: resolved, scalars: scalars)
    }

    /// The transpose of a 2-D tensor: `[m, n]` becomes `[n, m]`.
    /// - Throws: `TensorError.rankMismatch` unless the tensor is 2-D.
    public func transposed() throws -> Tensor {
        guard rank == 2 else { throw TensorError.rankMismatch(operation: "transposed", expected: 2, shape: shape) }
        let m = shape[0], n = shape[1]
        return withUnsafeBufferPointer { src in
            Tensor(uncheckedShape: [n, m]) { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                // Blocked so that both sides stay in cache.
                let block = 32
                for i0 in stride(from: 0, to: m, by: block) {
                    for j0 in stride(from: 0, to: n, by: block) {
                        for i in i0..<Swift.min(i0 + block, m) {
                            for j in j0..<Swift.min(j0 + block, n) { d[j * m + i] = s[i * n + j] }
                        }
                    }
                }
            }
        }
    }

    /// Rows `range` of a tensor of rank ≥ 1 (a copy): `[n, …]` becomes `[range.count, …]`.
    /// - Throws: `TensorError.outOfRange` if `range` is not inside `0..<shape[0]`.
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard rank >= 1 else { throw TensorError.rankMismatch(operation: "rows", expected: 1, shape: shape) }
        guard range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.outOfRange(operation: "rows", range: range, bound: shape[0])
        }
        let rowSize = shape.dropFirst().reduce(1, *)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(
            uncheckedShape: newShape,
            scalars: Array(scalars[(range.lowerBound * rowSize)..<(range.upperBound * rowSize)]))
    }

    /// The rows at `indices` (in that order, repeats allowed), e.g. to gather a batch.
    /// - Throws: `TensorError.outOfRange` if an index is outside `0..<shape[0]`.
    public func gatherRows(_ indices: [Int]) throws -> Tensor {
        guard rank >= 1 else { throw TensorError.rankMismatch(operation: "gatherRows", expected: 1, shape: shape) }
        if let bad = indices.first(where: { $0 < 0 || $0 >= shape[0] }) {
            throw TensorError.outOfRange(operation: "gatherRows", range: bad..<(bad == Int.max ? bad : bad + 1), bound: shape[0])
        }
        let rowSize = shape.dropFirst().reduce(1, *)
        var newShape = shape
        newShape[0] = indices.count
        return withUnsafeBufferPointer { src in
            Tensor(uncheckedShape: newShape) { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for (k, row) in indices.enumerated() {
                    (d + k * rowSize).update(from: s + row * rowSize, count: rowSize)
                }
            }
        }
    }
}
