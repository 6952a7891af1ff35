/// How a binary elementwise operation pairs the elements of its operands.
enum BroadcastPlan {
    /// Same shape: element i with element i.
    case sameShape
    /// `rhs` is one row (`[n]` or `[1, n]`) added to every row of `lhs` (`[…, n]`).
    case rowBroadcast(rows: Int, columns: Int)
}

extension Tensor {
    static func broadcastPlan(_ lhs: Tensor, _ rhs: Tensor, operation: String) throws -> BroadcastPlan {
        if lhs.shape == rhs.shape { return .sameShape }
        if let columns = lhs.shape.last, lhs.rank >= 1,
            rhs.shape == [columns] || rhs.shape == [1, columns]
        {
            return .rowBroadcast(rows: columns == 0 ? 0 : lhs.count / columns, columns: columns)
        }
        throw TensorError.shapeMismatch(operation: operation, lhs: lhs.shape, rhs: rhs.shape)
    }

    func map(_ f: (Float) -> Float) -> Tensor {
        withUnsafeBufferPointer { src in
            Tensor(uncheckedShape: shape) { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                Kernels.unary(s, d, count: src.count, f)
            }
        }
    }

    mutating func apply(_ f: (Float) -> Float) {
        withUnsafeMutableBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return }
            Kernels.unary(p, p, count: buffer.count, f)
        }
    }

    func combined(with rhs: Tensor, operation: String, _ op: (Float, Float) -> Float) throws -> Tensor {
        let plan = try Tensor.broadcastPlan(self, rhs, operation: operation)
        return withUnsafeBufferPointer { a in
            rhs.withUnsafeBufferPointer { b in
                Tensor(uncheckedShape: shape) { out in
                    guard let o = out.baseAddress, let aBase = a.baseAddress, let bBase = b.baseAddress else { return }
                    switch plan {
                    case .sameShape: Kernels.binary(aBase, bBase, o, count: a.count, op)
                    case let .rowBroadcast(rows, columns):
                        Kernels.binaryRowBroadcast(aBase, row: bBase, o, rows: rows, columns: columns, op)
                    }
                }
            }
        }
    }

    mutating func combine(with rhs: Tensor, operation: String, _ op: (Float, Float) -> Float) throws {
        let plan = try Tensor.broadcastPlan(self, rhs, operation: operation)
        rhs.withUnsafeBufferPointer { b in
            withUnsafeMutableBufferPointer { a in
                guard let aBase = a.baseAddress, let bBase = b.baseAddress else { return }
                switch plan {
                case .sameShape: Kernels.binary(aBase, bBase, aBase, count: a.count, op)
                case let .rowBroadcast(rows, columns):
                    Kernels.binaryRowBroadcast(aBase, row: bBase, aBase, rows: rows, columns: columns, op)
                }
            }
        }
    }

    /// Elementwise sum. `rhs` has the shape of `lhs`, or is one row (`[n]` / `[1, n]`)
    /// broadcast over the rows of `lhs` (`[…, n]`).
    /// - Throws: `TensorError.shapeMismatch` naming both shapes otherwise.
    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.combined(with: rhs, operation: "add", +) }
    /// Elementwise difference, broadcasting as `+`.
    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.combined(with: rhs, operation: "sub", -) }
    /// Elementwise product, broadcasting as `+`.
    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.combined(with: rhs, operation: "mul", *) }
    /// Elementwise quotient, broadcasting as `+`.
    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.combined(with: rhs, operation: "div", /) }

    /// In-place elementwise sum, broadcasting as `+`.
    public static func += (lhs: inout Tensor, rhs: Tensor) throws { try lhs.combine(with: rhs, operation: "add", +) }
    /// In-place elementwise difference, broadcasting as `+`.
    public static func -= (lhs: inout Tensor, rhs: Tensor) throws { try lhs.combine(with: rhs, operation: "sub", -) }
    /// In-place elementwise product, broadcasting as `+`.
    public static func *= (lhs: inout Tensor, rhs: Tensor) throws { try lhs.combine(with: rhs, operation: "mul", *) }
    /// In-place elementwise quotient, broadcasting as `+`.
    public static func /= (lhs: inout Tensor, rhs: Tensor) throws { try lhs.combine(with: rhs, operation: "div", /) }

    /// Adds a scalar to every element.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 + rhs } }
    /// Subtracts a scalar from every element.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 - rhs } }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 * rhs } }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.map { lhs * $0 } }
    /// Divides every element by a scalar.
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 / rhs } }
    /// Negates every element.
    public static prefix func - (operand: Tensor) -> Tensor { operand.map { -$0 } }

    /// Adds a scalar to every element in place.
    public static func += (lhs: inout Tensor, rhs: Float) { lhs.apply { $0 + rhs } }
    /// Subtracts a scalar from every element in place.
    public static func -= (lhs: inout Tensor, rhs: Float) { lhs.apply { $0 - rhs } }
    /// Multiplies every element by a scalar in place.
    public static func *= (lhs: inout Tensor, rhs: Float) { lhs.apply { $0 * rhs } }
    /// Divides every element by a scalar in place.
    public static func /= (lhs: inout Tensor, rhs: Float) { lhs.apply { $0 / rhs } }

    /// `self += alpha · x` (BLAS axpy) in place; `x` has the shape of `self`.
    /// - Throws: `TensorError.shapeMismatch` if the shapes differ.
    public mutating func axpy(_ alpha: Float, _ x: Tensor) throws {
        guard x.shape == shape else { throw TensorError.shapeMismatch(operation: "axpy", lhs: shape, rhs: x.shape) }
        x.withUnsafeBufferPointer { xs in
            withUnsafeMutableBufferPointer { ys in
                guard let xp = xs.baseAddress, let yp = ys.baseAddress else { return }
                Kernels.axpy(alpha, xp, yp, count: ys.count)
            }
        }
    }

    /// Multiplies every element by `alpha` in place.
    public mutating func scale(by alpha: Float) {
        withUnsafeMutableBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return }
            Kernels.scale(p, count: buffer.count, by: alpha)
        }
    }

    /// `alpha · self`.
    public func scaled(by alpha: Float) -> Tensor { map { alpha * $0 } }
}
