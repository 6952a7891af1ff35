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

extension ChunkLayout {
    /// `chunk` cut into segments of at most `size` elements (≥ 1); an empty chunk is one empty
    /// segment, so every ring step still carries a frame (and its header's element count).
    static func segments(of chunk: Range<Int>, size: Int) -> [Range<Int>] {
        guard !chunk.isEmpty else { return [chunk] }
        return stride(from: chunk.lowerBound, to: chunk.upperBound, by: size).map { $0..<Swift.min($0 + size, chunk.upperBound) }
    }
}
