/// A fixed-size, 64-byte-aligned, zero-initialised block of `Float` with reference semantics.
///
/// Models keep all their parameters in one `FlatBuffer` and all gradients in another, so a
/// whole gradient can be all-reduced in one call straight from its memory.
public final class FlatBuffer: @unchecked Sendable {
    /// The first element; valid for `count` elements while the buffer lives.
    public let baseAddress: UnsafeMutablePointer<Float>
    /// The number of elements.
    public let count: Int

    /// Allocates `count` zeroed elements (`count >= 0`; a negative count is treated as 0).
    public init(count: Int) {
        let n = Swift.max(count, 0)
        self.count = n
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: Swift.max(n, 1) * MemoryLayout<Float>.stride, alignment: 64)
        baseAddress = raw.bindMemory(to: Float.self, capacity: Swift.max(n, 1))
        baseAddress.initialize(repeating: 0, count: Swift.max(n, 1))
    }

    deinit { baseAddress.deallocate() }

    /// The whole buffer as a mutable buffer pointer (`count` elements).
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: baseAddress, count: count) }

    /// Sets every element to zero.
    public func zero() { baseAddress.update(repeating: 0, count: count) }

    /// A copy of elements `range` as a tensor of `shape`.
    /// - Throws: `TensorError.outOfRange` or `.invalidShape` if they do not fit.
    public func tensor(_ range: Range<Int>, shape: [Int]) throws -> Tensor {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw TensorError.outOfRange(operation: "FlatBuffer.tensor", range: range, bound: count)
        }
        return try Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: baseAddress + range.lowerBound, count: range.count)))
    }

    /// Copies `tensor`'s elements into `range`.
    /// - Throws: `TensorError.outOfRange` / `.shapeMismatch` if they do not fit.
    public func assign(_ tensor: Tensor, to range: Range<Int>) throws {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw TensorError.outOfRange(operation: "FlatBuffer.assign", range: range, bound: count)
        }
        guard tensor.count == range.count else {
            throw TensorError.shapeMismatch(operation: "FlatBuffer.assign", lhs: [range.count], rhs: tensor.shape)
        }
        tensor.withUnsafeBufferPointer { src in
            guard let s = src.baseAddress else { return }
            (baseAddress + range.lowerBound).update(from: s, count: range.count)
        }
    }

    /// Copies every element of `other`, which must have the same count.
    /// - Throws: `TensorError.shapeMismatch` if the counts differ.
    public func copy(from other: FlatBuffer) throws {
        guard other.count == count else {
            throw TensorError.shapeMismatch(operation: "FlatBuffer.copy", lhs: [count], rhs: [other.count])
        }
        baseAddress.update(from: other.baseAddress, count: count)
    }
}
