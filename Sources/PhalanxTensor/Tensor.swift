/// A dense, row-major, contiguous array of `Float` with a shape.
///
/// `Tensor` has value semantics: copies share storage until one of them is mutated
/// (copy-on-write). Element `[i0, i1, …]` lives at offset `i0·stride0 + i1·stride1 + …`
/// where the last axis has stride 1. A tensor of rank 0 (shape `[]`) holds one scalar.
public struct Tensor: Sendable, Equatable {
    /// The extent of each axis; the element count is their product.
    public private(set) var shape: [Int]
    /// The elements in row-major order. `scalars.count == shape.reduce(1, *)`.
    public private(set) var scalars: [Float]

    /// Makes a tensor from row-major `scalars`.
    /// - Throws: `TensorError.invalidShape` if an extent is negative or the product of
    ///   `shape` is not `scalars.count`.
    public init(shape: [Int], scalars: [Float]) throws {
        try Self.validate(shape: shape)
        let expected = shape.reduce(1, *)
        guard expected == scalars.count else {
            throw TensorError.invalidShape(
                shape, reason: "needs \(expected) elements but \(scalars.count) were given")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// Makes a 1-D tensor of shape `[scalars.count]`.
    public init(_ scalars: [Float]) {
        self.shape = [scalars.count]
        self.scalars = scalars
    }

    /// Makes a 2-D tensor from rows of equal length.
    /// - Throws: `TensorError.invalidShape` if the rows differ in length.
    public init(rows: [[Float]]) throws {
        let columns = rows.first?.count ?? 0
        if let bad = rows.firstIndex(where: { $0.count != columns }) {
            throw TensorError.invalidShape(
                [rows.count, columns], reason: "row \(bad) has \(rows[bad].count) elements, row 0 has \(columns)")
        }
        self.shape = [rows.count, columns]
        self.scalars = rows.flatMap { $0 }
    }

    /// Makes a scalar tensor (rank 0, shape `[]`).
    public init(scalar: Float) {
        self.shape = []
        self.scalars = [scalar]
    }

    /// Makes a tensor whose elements are written by `fill`, with no zero-filling pass first:
    /// the allocation-free way for kernels to produce a result.
    ///
    /// `fill` receives `shape.reduce(1, *)` uninitialised elements and must write every one.
    /// - Throws: `TensorError.invalidShape` for a negative extent, or what `fill` throws.
    public init(shape: [Int], initializingWith fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        try Self.validate(shape: shape)
        let count = shape.reduce(1, *)
        self.shape = shape
        self.scalars = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try fill(buffer)
            initialized = count
        }
    }

    /// Internal: a tensor whose storage is written by `fill`, which must set all `count`
    /// elements. No zero-filling pass is made.
    init(uncheckedShape shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(buffer)
            initialized = count
        }
    }

    /// Internal: wraps storage whose size is known to match `shape`.
    init(uncheckedShape shape: [Int], scalars: [Float]) {
        self.shape = shape
        self.scalars = scalars
    }

    /// The number of elements (the product of `shape`).
    public var count: Int { scalars.count }

    /// The number of axes.
    public var rank: Int { shape.count }

    /// The value of a rank-0 or one-element tensor, `nil` otherwise.
    public var scalar: Float? { scalars.count == 1 ? scalars[0] : nil }

    /// The element at a multi-dimensional index.
    /// - Precondition: `index.count == rank` and each component is in range; indices are
    ///   programmer-made, like an array subscript.
    public subscript(_ index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) does not match shape \(shape)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "index \(index) out of range for shape \(shape)")
            offset = offset * shape[axis] + i
        }
        return offset
    }

    /// Calls `body` with a pointer to the elements (row-major, `count` long).
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with a mutable pointer to the elements, copying shared storage first.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer { try body($0) }
    }

    static func validate(shape: [Int]) throws {
        if shape.contains(where: { $0 < 0 }) {
            throw TensorError.invalidShape(shape, reason: "extents must not be negative")
        }
        var total = 1
        for extent in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: extent)
            if overflow { throw TensorError.invalidShape(shape, reason: "element count overflows Int") }
            total = product
        }
    }
}

extension Tensor: CustomStringConvertible {
    /// A short description: the shape and up to the first eight elements.
    public var description: String {
        let head = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(scalars.count > 8 ? ", …" : "")])"
    }
}
