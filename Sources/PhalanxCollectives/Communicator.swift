import PhalanxTensor

/// Collective operations over a group of `worldSize` ranks, in place on `Float` buffers.
///
/// Every rank must make the same calls in the same order with the same element counts; a rank
/// that does not gets a `CollectiveError` (never silently wrong data), and so do the others.
/// Buffers are used in place: no copy is made beyond the transport's own segment scratch.
public protocol Communicator: AnyObject {
    /// This rank, `0..<worldSize`.
    var rank: Int { get }
    /// The number of ranks.
    var worldSize: Int { get }

    /// Replaces every element by its reduction over all ranks.
    /// - Throws: `CollectiveError`.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws

    /// Reduces over all ranks but leaves on each rank only its chunk:
    /// `ChunkLayout(count: buffer.count, parts: worldSize).range(rank)` of `buffer` holds the
    /// reduction afterwards (other elements are unspecified).
    /// - Returns: that range.
    /// - Throws: `CollectiveError`.
    @discardableResult
    func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws -> Range<Int>

    /// Each rank contributes chunk `rank` of `buffer` (by `ChunkLayout`); afterwards every rank
    /// holds every chunk.
    /// - Throws: `CollectiveError`.
    func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, options: CollectiveOptions) throws

    /// Copies `buffer` of rank `root` into `buffer` on every rank.
    /// - Throws: `CollectiveError` (`.invalidArgument` for a root outside the world).
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int, options: CollectiveOptions) throws

    /// Returns once every rank has called `barrier`.
    /// - Throws: `CollectiveError`.
    func barrier(options: CollectiveOptions) throws
}

extension Communicator {
    /// All-reduce with default options.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp = .sum) throws {
        try allReduce(buffer, op: op, options: .default)
    }

    /// All-reduce of a tensor in place (any shape).
    public func allReduce(_ tensor: inout Tensor, op: ReduceOp = .sum, options: CollectiveOptions = .default) throws {
        try tensor.withUnsafeMutableBufferPointer { try allReduce($0, op: op, options: options) }
    }

    /// All-reduce of a whole flat buffer (e.g. a model's gradients) in place.
    public func allReduce(_ buffer: FlatBuffer, op: ReduceOp = .sum, options: CollectiveOptions = .default) throws {
        try allReduce(buffer.buffer, op: op, options: options)
    }

    /// Reduce-scatter with default options.
    @discardableResult
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp = .sum) throws -> Range<Int> {
        try reduceScatter(buffer, op: op, options: .default)
    }

    /// All-gather with default options.
    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try allGather(buffer, options: .default) }

    /// Broadcast with default options.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int) throws {
        try broadcast(buffer, from: root, options: .default)
    }

    /// Broadcast of a tensor in place; every rank must pass a tensor of the same element count.
    public func broadcast(_ tensor: inout Tensor, from root: Int, options: CollectiveOptions = .default) throws {
        try tensor.withUnsafeMutableBufferPointer { try broadcast($0, from: root, options: options) }
    }

    /// Barrier with default options.
    public func barrier() throws { try barrier(options: .default) }
}
