import PhalanxTensor

/// Seeded permutations, identical on every platform and every member of a job.
public enum Permutation {
    /// `0..<count` shuffled by Fisher–Yates with a `SeededGenerator(seed:)`.
    public static func shuffled(count: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        var order = Array(0..<max(count, 0))
        if order.count < 2 { return order }
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            // Lemire's unbiased bounded draw.
            let j = Int(boundedRandom(UInt64(i + 1), &generator))
            order.swapAt(i, j)
        }
        return order
    }

    static func boundedRandom(_ bound: UInt64, _ generator: inout SeededGenerator) -> UInt64 {
        var product = generator.next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = generator.next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }
}
