/// How `count` elements are cut into `parts` contiguous chunks of near-equal size: the first
/// `count % parts` chunks hold one element more. Chunk `i` is what rank `i` owns after a
/// reduce-scatter and contributes to an all-gather.
public struct ChunkLayout: Sendable, Equatable {
    /// The number of elements.
    public let count: Int
    /// The number of chunks (≥ 1).
    public let parts: Int

    /// Makes a layout; `parts` below 1 is treated as 1.
    public init(count: Int, parts: Int) {
        self.count = Swift.max(count, 0)
        self.parts = Swift.max(parts, 1)
    }

    /// The element range of chunk `index` (0 ≤ index < parts).
    public func range(_ index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + Swift.min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }
}
